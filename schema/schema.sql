-- schema.sql -- the heapsnap snapshot format, version 1. The one source of truth:
-- the capture embeds this file verbatim and runs it on every new snapshot, and the
-- analyzer refuses files whose application_id or user_version it does not know.
-- schema/README.md explains every table in prose; keep the two in step.
--
-- Conventions
--   * Addresses are target virtual addresses stored as INTEGER (signed 64-bit). x86-64
--     user space addresses fit in 47 bits and read as themselves; the one exception is
--     the [vsyscall] mapping at 0xffffffffff600000, which reads as negative: print with
--     printf('%x', start), sort with ORDER BY start < 0, start.
--   * Ids (module, mapping, frame, callsite, arena) are arbitrary positive integers:
--     join on them, do not rely on their order.
--   * Sizes are in bytes unless the column name ends in _kb (kibibytes, as /proc prints
--     them) or _us (microseconds).
--   * NULL means "not known" or "does not apply", never zero.
--   * Enumerations are stored as small integers; each has a lookup table below whose
--     rows are part of the format.

PRAGMA application_id = 1213419088;  -- 0x48534E50, 'HSNP'
PRAGMA user_version = 1;             -- format version; bump on any incompatible change

-- ---------------------------------------------------------------- the capture itself
-- One row. Facts about the process at the moment it was frozen, and about the freeze.
CREATE TABLE process (
  pid              INTEGER NOT NULL,  -- process id
  ppid             INTEGER,           -- parent process id
  uid              INTEGER,           -- real user id
  gid              INTEGER,           -- real group id
  exe              TEXT,              -- readlink of /proc/PID/exe (target-controlled text)
  cmdline          TEXT,              -- JSON array of the argv strings (target-controlled)
  comm             TEXT,              -- /proc/PID/comm (target-controlled)
  start_ticks      INTEGER,           -- /proc/PID/stat field 22: start time, clock ticks after boot
  kernel           TEXT,              -- uname -r of the capturing machine
  glibc_version    TEXT,              -- "2.36"; NULL if the target has no glibc
  page_size        INTEGER,           -- bytes
  capture_time_us  INTEGER NOT NULL,  -- UTC microseconds since the Unix epoch, at the freeze
  vm_size_kb       INTEGER,           -- VmSize: what top shows as VIRT, kB
  vm_rss_kb        INTEGER,           -- VmRSS: top's RES, kB
  rss_anon_kb      INTEGER,           -- RssAnon, kB
  rss_file_kb      INTEGER,           -- RssFile, kB
  rss_shmem_kb     INTEGER,           -- RssShmem, kB; top's SHR = rss_file_kb + rss_shmem_kb
  vm_swap_kb       INTEGER,           -- VmSwap, kB
  vm_peak_kb       INTEGER,           -- VmPeak, kB
  vm_hwm_kb        INTEGER,           -- VmHWM (peak RSS), kB
  vm_data_kb       INTEGER,           -- VmData, kB
  vm_stk_kb        INTEGER            -- VmStk (main stack), kB
);

-- One row. How the capture went.
CREATE TABLE capture (
  tool_version     TEXT NOT NULL,     -- heapsnap version that wrote the file
  pause_us         INTEGER NOT NULL,  -- the frozen window: first thread stopped to last resumed, us
  freeze_us        INTEGER,           -- part of the pause spent stopping threads, us
  safepoint_us     INTEGER,           -- part spent letting threads run out of the allocator, us
  copy_us          INTEGER,           -- part spent copying memory, us
  copy_bytes       INTEGER,           -- bytes copied in the frozen window
  attempts         INTEGER,           -- freezes made (more than 1 when the heap was in flux)
  threads_ran_out  INTEGER,           -- threads let run out of the allocator before the copy
  threads_in_flux  INTEGER,           -- threads still inside the allocator when copied
  heap_found       INTEGER NOT NULL,  -- 1 if a glibc heap was found and walked, else 0
  heap_note        TEXT,              -- e.g. "no glibc heap found: the target does not use glibc malloc"
  debug_symbols    INTEGER,           -- 1 if main_arena/mp_ were located with libc debug symbols
  contents         INTEGER NOT NULL DEFAULT 0  -- 1 if chunk contents are stored (capture --contents: table chunk_content)
);

-- ---------------------------------------------------------------- address space
CREATE TABLE mapping_kind (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
INSERT INTO mapping_kind VALUES
  (0,'anon'),(1,'heap'),(2,'arena_heap'),(3,'mmap_chunk'),(4,'stack'),
  (5,'module_text'),(6,'module_rodata'),(7,'module_data'),(8,'module_bss'),
  (9,'vdso'),(10,'vvar'),(11,'vsyscall'),(12,'shm'),(13,'file'),(14,'guard');

-- Loaded ELF objects: the executable and every shared library.
CREATE TABLE module (
  id               INTEGER PRIMARY KEY,
  path             TEXT NOT NULL,     -- as /proc/PID/maps shows it (target-controlled)
  build_id         TEXT,              -- GNU build-id, lowercase hex; NULL if the ELF has none
  load_base        INTEGER NOT NULL,  -- load bias: runtime address = ELF vaddr + load_base
  start            INTEGER NOT NULL,  -- lowest mapped address
  end              INTEGER NOT NULL,  -- highest mapped address (exclusive)
  is_main          INTEGER NOT NULL,  -- 1 for the main executable
  has_debuginfo    INTEGER NOT NULL   -- 1 if DWARF was found for it at capture
);

-- Every VMA of /proc/PID/smaps, with every field. Sizes in kB as the kernel prints them;
-- NULL where this kernel does not print the field.
CREATE TABLE mapping (
  id               INTEGER PRIMARY KEY,
  start            INTEGER NOT NULL,  -- first address
  end              INTEGER NOT NULL,  -- one past the last address
  perms            TEXT NOT NULL,     -- "rw-p"
  offset           INTEGER NOT NULL,  -- file offset, bytes
  dev              TEXT,              -- "fd:01"
  inode            INTEGER,
  path             TEXT,              -- NULL for anonymous memory (target-controlled)
  kind             INTEGER NOT NULL REFERENCES mapping_kind(id),
  module_id        INTEGER REFERENCES module(id),  -- for module_* kinds
  tid              INTEGER,           -- for kind 'stack': the thread whose stack it is
  size_kb          INTEGER,           -- Size
  kernel_page_kb   INTEGER,           -- KernelPageSize
  mmu_page_kb      INTEGER,           -- MMUPageSize
  rss_kb           INTEGER,           -- Rss: resident
  pss_kb           INTEGER,           -- Pss: resident, shared pages divided among sharers
  pss_dirty_kb     INTEGER,           -- Pss_Dirty
  pss_anon_kb      INTEGER,           -- Pss_Anon
  pss_file_kb      INTEGER,           -- Pss_File
  pss_shmem_kb     INTEGER,           -- Pss_Shmem
  shared_clean_kb  INTEGER,           -- Shared_Clean
  shared_dirty_kb  INTEGER,           -- Shared_Dirty
  private_clean_kb INTEGER,           -- Private_Clean
  private_dirty_kb INTEGER,           -- Private_Dirty
  referenced_kb    INTEGER,           -- Referenced
  anonymous_kb     INTEGER,           -- Anonymous
  ksm_kb           INTEGER,           -- KSM
  lazyfree_kb      INTEGER,           -- LazyFree
  anon_huge_kb     INTEGER,           -- AnonHugePages
  shmem_pmd_kb     INTEGER,           -- ShmemPmdMapped
  file_pmd_kb      INTEGER,           -- FilePmdMapped
  shared_hugetlb_kb  INTEGER,         -- Shared_Hugetlb
  private_hugetlb_kb INTEGER,         -- Private_Hugetlb
  swap_kb          INTEGER,           -- Swap
  swap_pss_kb      INTEGER,           -- SwapPss
  locked_kb        INTEGER,           -- Locked
  thp_eligible     INTEGER,           -- THPeligible: 0 or 1
  vmflags          TEXT               -- VmFlags, space separated
);
-- smaps keys this version has no column for (newer kernels), one row per key.
CREATE TABLE mapping_extra (
  mapping_id       INTEGER NOT NULL REFERENCES mapping(id),
  key              TEXT NOT NULL,     -- the smaps key, verbatim
  value            INTEGER NOT NULL   -- its number (kB for sizes)
);

-- ---------------------------------------------------------------- code locations
-- One row per distinct pc (normalized like Perfetto's stack_profile_frame). An inlined
-- call chain at one pc is several rows with the same module_id/rel_pc and rising
-- inline_depth: depth 0 is the function the pc is really in.
CREATE TABLE frame (
  id               INTEGER PRIMARY KEY,
  module_id        INTEGER REFERENCES module(id), -- NULL if the pc is in no module
  rel_pc           INTEGER NOT NULL,  -- pc - module.load_base (the absolute pc if module_id is NULL)
  function         TEXT,              -- demangled function name; NULL if unknown
  func_offset      INTEGER,           -- pc - function start, bytes
  file             TEXT,              -- source file; NULL without debug info
  line             INTEGER,           -- source line; NULL without debug info
  inline_depth     INTEGER NOT NULL DEFAULT 0
);
-- A call stack as a parent-linked list (Perfetto's stack_profile_callsite): the row for
-- the innermost frame points to its caller through parent_id, up to depth 0.
CREATE TABLE callsite (
  id               INTEGER PRIMARY KEY,
  parent_id        INTEGER REFERENCES callsite(id), -- NULL for the outermost frame
  frame_id         INTEGER NOT NULL REFERENCES frame(id),
  depth            INTEGER NOT NULL   -- 0 for the outermost frame
);

-- ---------------------------------------------------------------- threads
CREATE TABLE safepoint_kind (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
INSERT INTO safepoint_kind VALUES
  (0,'clean'),(1,'ran_out'),(2,'parked_lock'),(3,'parked_syscall'),(4,'in_flux'),(5,'unknown');

CREATE TABLE thread (
  tid              INTEGER PRIMARY KEY,
  name             TEXT,              -- /proc/PID/task/TID/comm (target-controlled)
  state            TEXT,              -- state letter before the capture: R S D T t Z
  was_stopped      INTEGER NOT NULL,  -- 1 if it was stopped (SIGSTOP) before the capture; left stopped
  pc               INTEGER,           -- rip when frozen
  sp               INTEGER,           -- rsp when frozen
  fs_base          INTEGER,           -- thread pointer
  stack_lo         INTEGER,           -- its stack mapping [stack_lo, stack_hi)
  stack_hi         INTEGER,
  safepoint        INTEGER NOT NULL REFERENCES safepoint_kind(id), -- how it was brought to a safe point
  syscall_nr       INTEGER,           -- the syscall it was blocked in, NULL if none
  tcache           INTEGER,           -- its tcache_perthread_struct (user pointer), NULL if none
  arena_id         INTEGER REFERENCES arena(id), -- the arena it allocates from, NULL if unknown
  callsite_id      INTEGER REFERENCES callsite(id), -- innermost frame of its backtrace
  unwind_error     TEXT               -- why the backtrace stopped early, NULL if it reached the end
);
-- General registers at the freeze (x86-64 struct user_regs_struct).
CREATE TABLE thread_register (
  tid              INTEGER NOT NULL REFERENCES thread(tid),
  name             TEXT NOT NULL,     -- "rip", "rsp", "rax", ..., "fs_base"
  value            INTEGER NOT NULL,  -- stored as signed 64-bit; mask with 0xffffffffffffffff
  PRIMARY KEY (tid, name)
) WITHOUT ROWID;

-- What each thread's tcache held at the capture: one row per non-empty bin. The chunk
-- table marks tcache chunks (state 2) but not whose they are; this table says. A thread
-- with thread.tcache set and no rows here had an empty tcache.
CREATE TABLE thread_tcache (
  tid              INTEGER NOT NULL REFERENCES thread(tid),
  bin_size         INTEGER NOT NULL,  -- chunk size the bin holds, bytes (32 + 16 * bin index)
  count            INTEGER NOT NULL,  -- chunks in the bin (tcache_perthread_struct.counts[i])
  bytes            INTEGER NOT NULL,  -- their total chunk size, bytes
  PRIMARY KEY (tid, bin_size)
) WITHOUT ROWID;

-- ---------------------------------------------------------------- glibc heap
CREATE TABLE arena (
  id               INTEGER PRIMARY KEY,
  addr             INTEGER NOT NULL,  -- &malloc_state in the target
  is_main          INTEGER NOT NULL,  -- 1 for main_arena
  top              INTEGER,           -- its top chunk
  system_mem       INTEGER,           -- malloc_state.system_mem, bytes (as the header says)
  max_system_mem   INTEGER,           -- malloc_state.max_system_mem, bytes
  mutex            INTEGER,           -- lock word when frozen (0 = unlocked)
  flags            INTEGER,           -- malloc_state.flags
  attached_threads INTEGER,           -- threads using it
  list_bin_count   INTEGER,           -- chunks on its bin lists, counted the way int_mallinfo does
  list_bin_bytes   INTEGER,
  list_fast_count  INTEGER,           -- chunks on its fastbin lists
  list_fast_bytes  INTEGER,
  top_size         INTEGER,           -- size of its top chunk, bytes
  consistent       INTEGER NOT NULL,  -- 1 if every consistency check passed
  note             TEXT               -- what failed, NULL when consistent
);
-- The heaps (64 MiB-aligned mappings) of non-main arenas.
CREATE TABLE heap (
  arena_id         INTEGER NOT NULL REFERENCES arena(id),
  addr             INTEGER NOT NULL,  -- heap_info address
  size             INTEGER NOT NULL,  -- heap_info.size: read-write bytes in use
  mprotect_size    INTEGER NOT NULL   -- heap_info.mprotect_size
);

CREATE TABLE chunk_state (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
INSERT INTO chunk_state VALUES
  (0,'in_use'),(1,'free_bin'),(2,'tcache'),(3,'fastbin'),(4,'top'),(5,'internal');

-- Every chunk of every arena heap, and every mmapped chunk. Chunks of one arena tile its
-- heaps exactly: allocator-internal pseudo-chunks cover heap/arena headers and fenceposts,
-- so the sizes of an arena's chunks add up to its system_mem.
CREATE TABLE chunk (
  addr             INTEGER PRIMARY KEY, -- chunk address; the user pointer is addr + 16
  size             INTEGER NOT NULL,  -- chunk size, bytes, flag bits cleared
  state            INTEGER NOT NULL REFERENCES chunk_state(id),
  arena_id         INTEGER REFERENCES arena(id), -- NULL for mmapped chunks (no arena)
  internal         INTEGER,           -- for state 'internal': 1 tcache struct, 2 heap/arena header,
                                      -- 3 fencepost, 4 lead padding of a memaligned mmapped chunk
  usable           INTEGER GENERATED ALWAYS AS
                     (size - CASE WHEN arena_id IS NULL THEN 16 ELSE 8 END) VIRTUAL
                                      -- malloc_usable_size() of an in-use chunk, bytes (not stored)
);

-- What the tracking library (libheapsnap_preload.so, `heapsnap run`) knew about each
-- in-use chunk it tracked: one row per in-use chunk that holds a valid tracking header.
-- Empty when the target did not run under the library. The chunk table still describes
-- the glibc heap exactly; the header is 2^k bytes at the chunk's user start (16 for
-- ordinary blocks, the alignment for aligned ones), so the program's pointer is not
-- chunk.addr + 16 but addr + 16 + (chunk.usable - alloc.usable).
CREATE TABLE alloc_origin (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
INSERT INTO alloc_origin VALUES
  (0,'stack'),(1,'internal'),(2,'unsampled'),(3,'no_stack'),(4,'table_full'),(5,'bad_stack');
CREATE TABLE alloc (
  addr             INTEGER PRIMARY KEY REFERENCES chunk(addr), -- the chunk
  requested        INTEGER NOT NULL,  -- bytes the program asked for
  callsite_id      INTEGER REFERENCES callsite(id), -- innermost frame of the allocating stack;
                                      -- NULL unless origin is 'stack'
  seq              INTEGER,           -- allocation sequence number (globally ordered to within
                                      -- about 1100 allocations, exact within a thread)
  usable           INTEGER,           -- malloc_usable_size() as the program sees it, bytes
                                      -- (chunk.usable minus the header)
  origin           INTEGER REFERENCES alloc_origin(id), -- how the library recorded it
  stack_id         INTEGER            -- the library's stack id (diagnostics)
);

-- One row when the target runs under the tracking library (none otherwise): the
-- library's settings and the join of its headers with the heap walk, both ways.
CREATE TABLE tracking (
  lib_path         TEXT NOT NULL,     -- libheapsnap_preload.so as mapped (target-controlled)
  module_id        INTEGER REFERENCES module(id),
  valid            INTEGER NOT NULL,  -- 1 if its state was read (0: see note; no alloc rows)
  note             TEXT,              -- why not valid, or a remark; NULL if none
  state_addr       INTEGER,           -- &heapsnap_tracker_state in the target
  format_version   INTEGER,           -- the library's data format (1)
  sample_interval  INTEGER,           -- mean bytes between samples; 0 = every allocation
  max_depth        INTEGER,           -- frames kept per stack
  n_stacks         INTEGER,           -- distinct stacks interned (ids 1 .. n_stacks-1)
  max_stacks       INTEGER,           -- stack table capacity
  n_threads        INTEGER,           -- thread records used
  n_unloads        INTEGER,           -- modules dlclosed while tracked
  seq              INTEGER,           -- the allocation sequence counter at the capture
  tracked_count    INTEGER,           -- in-use chunks recorded by the library (alloc rows whose
  tracked_bytes    INTEGER,           --   origin is not internal or unsampled); requested bytes
  internal_count   INTEGER,           -- in-use chunks the library made for itself
  internal_bytes   INTEGER,           --   requested bytes
  unsampled_count  INTEGER,           -- in-use chunks sampling skipped
  unsampled_bytes  INTEGER,           --   requested bytes
  untracked_count  INTEGER,           -- in-use chunks without a header (allocated before the
  untracked_bytes  INTEGER,           --   library loaded, or behind its back); chunk usable bytes
  table_full_count INTEGER,           -- tracked chunks with no stack because the table was full
  missing_count    INTEGER,           -- live by the library's counters but no header in the heap;
  missing_bytes    INTEGER,           --   NULL if the counters were not readable
  extra_count      INTEGER,           -- headers in the heap beyond the library's counts
  extra_bytes      INTEGER,           --   NULL if the counters were not readable
  n_fallback       INTEGER,           -- stacks the library took with libunwind
  n_bootstrap      INTEGER,           -- allocations served from its bootstrap buffer
  n_foreign_free   INTEGER,           -- frees/reallocs of pointers it did not make
  threads_in_hook  INTEGER,           -- threads copied inside a hook, outside the real allocator
  threads_in_alloc INTEGER,           -- threads copied inside the real allocator through a hook
  fork_torn        INTEGER            -- in a fork child: threads of the parent that were inside a
                                      -- hook at the fork; missing/extra may each be off by up to
                                      -- this many blocks (the headers stay exact)
);
-- The library's live thread records at the copy: what each thread was doing with the
-- allocator (its exact "inside the allocator" flag). The capture runs every thread with a
-- flag set on until it is clear (docs/capture.md), so after the safe points only parked
-- or in-flux threads show one.
CREATE TABLE tracking_thread (
  tid              INTEGER PRIMARY KEY, -- the thread (a thread row unless it exited meanwhile)
  "where"          INTEGER NOT NULL,  -- 0 outside the library, 1 in a hook (the library's own
                                      -- state may be mid-update), 2 in the real allocator
  n_alloc          INTEGER,           -- stacks it took by walking or with libunwind
  n_memo           INTEGER,           -- stacks it took from the validated memo
  n_walk           INTEGER            -- stacks it took with the cached-CFA walk
);

-- The mallinfo2() figures implied by the chunk table (not copied from arena counters).
-- Field meanings are glibc's: see schema/README.md.
CREATE VIEW mallinfo AS SELECT
  (SELECT coalesce(sum(size),0) FROM chunk WHERE arena_id IS NOT NULL)               AS arena,
  (SELECT count(*) FROM chunk WHERE state IN (1,4))                                 AS ordblks,
  (SELECT count(*) FROM chunk WHERE state = 3)                                      AS smblks,
  (SELECT count(*) FROM chunk WHERE arena_id IS NULL AND state = 0)                 AS hblks,
  (SELECT coalesce(sum(size),0) FROM chunk WHERE arena_id IS NULL)                  AS hblkhd,
  (SELECT coalesce(sum(size),0) FROM chunk WHERE arena_id IS NOT NULL AND state NOT IN (1,3,4)) AS uordblks,
  (SELECT coalesce(sum(size),0) FROM chunk WHERE state IN (1,3,4))                  AS fordblks,
  (SELECT coalesce(sum(size),0) FROM chunk WHERE state = 3)                         AS fsmblks,
  (SELECT coalesce(sum(c.size),0) FROM chunk c JOIN arena a ON c.arena_id = a.id
     WHERE a.is_main = 1 AND c.state = 4)                                           AS keepcost;

-- glibc's tunables and mmap counters as mp_ held them (for cross-checks). One row.
CREATE TABLE malloc_params (
  main_arena       INTEGER,           -- &main_arena
  mp_addr          INTEGER,           -- &mp_
  tcache_tls_offset INTEGER,          -- &tcache == fs_base - this, bytes
  n_mmaps          INTEGER,           -- mp_.n_mmaps: live mmapped chunks
  mmapped_mem      INTEGER,           -- mp_.mmapped_mem: their bytes
  mmap_threshold   INTEGER,           -- mp_.mmap_threshold, bytes
  trim_threshold   INTEGER,           -- mp_.trim_threshold, bytes
  arena_max        INTEGER,           -- mp_.arena_max (0 = default)
  tcache_bins      INTEGER,           -- mp_.tcache_bins
  tcache_count     INTEGER            -- mp_.tcache_count: chunks a tcache bin holds at most
);

-- ---------------------------------------------------------------- pointer graph (issue #4)
-- Built at capture from the copy taken in the frozen window (capture/ptrscan.c). Nodes are
-- the in-use chunks (state 0). Every 8-byte-aligned word of a node's user bytes that points
-- into another in-use chunk's user region [addr + 16, addr + size) is an edge: "start" when
-- it equals that chunk's user pointer (addr + 16), else "interior". Empty when the capture
-- ran with --no-graph or found no glibc heap.

-- A node's index: its rank among the in-use chunks in address order, from 0. chunk_edge
-- stores destinations as node indexes; this view turns them back into addresses.
CREATE VIEW node AS
  SELECT row_number() OVER (ORDER BY addr) - 1 AS idx, addr, size FROM chunk WHERE state = 0;

-- The edges of 64 consecutive nodes per row (nodes 64*grp .. 64*grp + 63; rows whose
-- nodes have no edge at all are left out). dst holds, for each of those nodes in order,
-- varint(count) and then its count edges, ascending by destination node, each as two
-- unsigned LEB128 varints (7 bits a byte, low bits first, high bit = more bytes follow):
--   1. (delta << 1) | interior: interior is 1 for an interior pointer; delta is, for the
--      node's first edge, zigzag(dst_node - src_node) (zigzag: 2x for x >= 0, -2x - 1 for
--      x < 0), for the next ones dst_node - previous dst_node (>= 1);
--   2. word: (offset in the source's user bytes of the first word pointing there) / 8.
-- Several words of one source pointing into the same destination make one edge: its start
-- pointer if it has one, else its lowest interior one. Measured: 6.1 bytes per edge
-- on a 10M-chunk, 20M-edge heap (bench/README.md, "Pointer graph (issue #4)").
CREATE TABLE chunk_edge (
  grp              INTEGER PRIMARY KEY, -- nodes 64*grp .. 64*grp + 63 (view node, idx)
  n                INTEGER NOT NULL,  -- edges packed in dst (all its nodes together)
  dst              BLOB NOT NULL      -- the packed edges (above)
);

CREATE TABLE root_kind (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
INSERT INTO root_kind VALUES (0,'register'),(1,'stack'),(2,'global'),(3,'tls'),(4,'other');

-- Every word outside the heap that points into an in-use chunk: one row per word
-- (a register counts as a word), so one chunk may have many roots.
CREATE TABLE root (
  id               INTEGER PRIMARY KEY,
  kind             INTEGER NOT NULL REFERENCES root_kind(id),
  dst              INTEGER NOT NULL REFERENCES chunk(addr), -- the chunk pointed into
  interior         INTEGER NOT NULL,  -- 1 if the word is not the chunk's user pointer
  slot             INTEGER,           -- address of the word; NULL for a register
  tid              INTEGER,           -- register, stack, tls: the thread; else NULL
  register         TEXT,              -- register: its name ("rax", "rsp", ...); else NULL
  module_id        INTEGER REFERENCES module(id), -- global: the module whose data holds the word
  symbol           TEXT,              -- global: the data symbol holding it, NULL if none found
  offset           INTEGER,           -- bytes: global: slot - symbol start (slot - module
                                      -- load_base without a symbol); stack: slot - the thread's sp;
                                      -- tls: slot - the thread's fs_base; other: slot - mapping start
  mapping_id       INTEGER REFERENCES mapping(id), -- the mapping holding the word, NULL for registers
  frame_no         INTEGER,           -- stack: the frame of the thread's backtrace whose part of
                                      -- the stack holds the word, 0 = the innermost (the thread's
                                      -- pc), counting real frames, not inlined levels; NULL when
                                      -- not known, and for the other kinds
  frame_id         INTEGER REFERENCES frame(id) -- stack: that frame's function (its inline_depth 0
                                      -- row, as in the thread's callsite chain); NULL with frame_no
);

-- C++ classes found from vtable pointers: a node whose first word points at an address
-- point (8-aligned, at least 16 bytes in) of a _ZTV symbol has that class.
CREATE TABLE type (
  id               INTEGER PRIMARY KEY,
  name             TEXT NOT NULL,     -- demangled class name ("ns::Derived")
  symbol           TEXT NOT NULL,     -- the vtable symbol ("_ZTVN2ns7DerivedE")
  module_id        INTEGER REFERENCES module(id), -- module defining the vtable
  vtable           INTEGER NOT NULL,  -- runtime address of the vtable symbol
  chunks           INTEGER NOT NULL   -- in-use chunks of this type
);
CREATE TABLE chunk_type (
  addr             INTEGER PRIMARY KEY REFERENCES chunk(addr),
  type_id          INTEGER NOT NULL REFERENCES type(id)
);

-- With `capture --contents` (capture.contents = 1): the usable bytes of every in-use
-- chunk (malloc_usable_size() bytes from the user pointer). Empty otherwise.
CREATE TABLE chunk_content (
  addr             INTEGER PRIMARY KEY REFERENCES chunk(addr),
  bytes            BLOB NOT NULL
);
