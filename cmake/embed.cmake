# embed.cmake -- turns a source file (schema/schema.sql, web-report/report.html) into a C
# string at build time: -DIN=file -DOUT=file.c [-DNAME=symbol, default hs_schema_sql].
file(READ ${IN} content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
if(NOT NAME)
  set(NAME hs_schema_sql)
endif()
file(WRITE ${OUT} "/* generated from ${IN}: do not edit */\nconst char ${NAME}[] = {${bytes} 0x00};\n")
