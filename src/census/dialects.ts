// What a lock is, how it is taken and where fork() lives, per libc: the census engine's dialects, one module each
// (dialect-glibc.ts, dialect-musl.ts, dialect-python.ts: each says what it reads); what they share is in
// dialect-common.ts.

export { GLIBC_SYSDEPS, glibcDialect } from './dialect-glibc.ts';
export { muslDialect } from './dialect-musl.ts';
export { pythonDialect } from './dialect-python.ts';
