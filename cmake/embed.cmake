# embed.cmake -- turns schema/schema.sql into a C string (hs_schema_sql) at build time.
file(READ ${IN} content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
file(WRITE ${OUT} "/* generated from schema/schema.sql: do not edit */\nconst char hs_schema_sql[] = {${bytes} 0x00};\n")
