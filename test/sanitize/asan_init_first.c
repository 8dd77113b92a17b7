/*
 * asan_init_first.c
 *		A library that test/sanitize/check.sh preloads into the server after
 *		libasan, so that AddressSanitizer initializes before any other
 *		library's constructor runs.
 *
 * Without it, postgres and psql hang at exit when libasan is preloaded
 * (Debian bookworm: glibc 2.36, libasan 12 and clang 14's runtime alike).
 * The constructor of libp11-kit, which the server loads through libldap and
 * GnuTLS, calls newlocale(), which holds glibc's locale lock while it calls
 * malloc().  That first intercepted call initializes AddressSanitizer, whose
 * start-up calls dlerror() and so gettext, which takes and releases the same
 * lock.  The lock is left corrupted, and freelocale() in the exit-time
 * destructor of libp11-kit then waits on it forever.
 *
 * Linked with -z initfirst, this library's constructor runs before every
 * other one and initializes AddressSanitizer while no lock is held.
 * __asan_init is the entry point that instrumented code calls at load time.
 */
extern void __asan_init(void);

__attribute__((constructor))
static void
init_asan_first(void)
{
	__asan_init();
}
