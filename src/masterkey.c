/*
 * masterkey.c
 *		Load the master key from hipaa_guard.master_key_command or
 *		hipaa_guard.master_key_file, keep it in locked memory, derive the
 *		wrapping key and the fingerprint from it.
 *
 * The key is loaded once, in the postmaster, while shared_preload_libraries
 * are processed, so that no session can influence where it comes from.  Every
 * backend, parallel worker and background worker inherits it through fork().
 * It lives in one page obtained with mmap(), excluded from core dumps, and
 * locked again in each child because mlock() is not inherited across fork().
 * Only the derived keys are kept: the raw key is wiped right after derivation.
 *
 * A missing or malformed key does not stop the server, because data that is
 * not encrypted must stay available.  Every use of a key then fails with an
 * error whose detail gives the reason (see hg_masterkey_current).  No message
 * contains key material: at most the key's length.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/ipc.h"

#include "crypto.h"
#include "keytext.h"
#include "masterkey.h"

#define MAX_KEY_OUTPUT		256

char	   *hg_master_key_command = NULL;
char	   *hg_master_key_file = NULL;
char	   *hg_previous_master_key_command = NULL;
char	   *hg_previous_master_key_file = NULL;

typedef struct KekSlot
{
	bool		loaded;
	HgKek		kek;
} KekSlot;

typedef struct LockedKeys
{
	KekSlot		current;
	KekSlot		previous;
} LockedKeys;

static LockedKeys *locked = NULL;
static pid_t locked_pid = 0;

/* Why the current key is not loaded; inherited by every child process. */
static char load_problem[256] = "hipaa_guard was not loaded through shared_preload_libraries.";
static const char *load_source = "none";

static void
wipe_locked(int code, Datum arg)
{
	if (locked != NULL)
		hg_wipe(locked, sizeof(LockedKeys));
}

/*
 * Map the page that holds the keys, or re-lock it in a forked child, and
 * make sure it is wiped when this process exits.
 */
static void
ensure_locked_page(void)
{
	pid_t		self = getpid();

	if (locked == NULL)
	{
		void	   *page = mmap(NULL, sizeof(LockedKeys), PROT_READ | PROT_WRITE,
								MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (page == MAP_FAILED)
			ereport(FATAL,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not map memory for the hipaa_guard master key: %m")));
		locked = (LockedKeys *) page;
		memset(locked, 0, sizeof(LockedKeys));
#ifdef MADV_DONTDUMP
		(void) madvise(page, sizeof(LockedKeys), MADV_DONTDUMP);
#endif
	}
	if (locked_pid != self)
	{
		/* XXX: when RLIMIT_MEMLOCK is exhausted the key stays unlocked. */
		if (mlock(locked, sizeof(LockedKeys)) != 0)
			ereport(DEBUG1,
					(errmsg("could not lock the hipaa_guard master key in memory: %m")));
		on_proc_exit(wipe_locked, (Datum) 0);
		locked_pid = self;
	}
}

static bool
read_command(const char *command, char *buf, size_t *len, char *why)
{
	FILE	   *pipe;
	size_t		n;
	int			status;

	fflush(NULL);
	pipe = popen(command, "r");
	if (pipe == NULL)
	{
		snprintf(why, 256, "The master key command could not be started: %m.");
		return false;
	}
	n = fread(buf, 1, MAX_KEY_OUTPUT, pipe);
	status = pclose(pipe);
	if (status != 0)
	{
		snprintf(why, 256, "The master key command failed with exit status %d.",
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return false;
	}
	*len = n;
	return true;
}

static bool
read_key_file(const char *path, char *buf, size_t *len, char *why)
{
	int			fd;
	struct stat st;
	ssize_t		n;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
	{
		snprintf(why, 256, "The master key file \"%s\" could not be opened: %m.", path);
		return false;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		snprintf(why, 256, "The master key file \"%s\" is not a regular file.", path);
		return false;
	}
	if (st.st_uid != geteuid() || (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		close(fd);
		snprintf(why, 256,
				 "The master key file \"%s\" must be owned by the database server's operating system user and have mode 0600 or 0400; it has mode %04o.",
				 path, (unsigned int) (st.st_mode & 07777));
		return false;
	}
	n = read(fd, buf, MAX_KEY_OUTPUT);
	close(fd);
	if (n < 0)
	{
		snprintf(why, 256, "The master key file \"%s\" could not be read: %m.", path);
		return false;
	}
	*len = (size_t) n;
	return true;
}

/*
 * Load one master key from a command or a file into slot.  Returns false
 * with the reason in why when the source is unusable or not set.
 */
static bool
load_one(const char *command, const char *file, KekSlot *slot, char *why)
{
	char		buf[MAX_KEY_OUTPUT + 1];
	size_t		len = 0;
	uint8_t		raw[HG_KEY_LEN];
	HgKeyTextStatus problem;
	bool		ok;

	slot->loaded = false;
	if (command != NULL && command[0] != '\0' && file != NULL && file[0] != '\0')
	{
		snprintf(why, 256, "Both a master key command and a master key file are set; set only one.");
		return false;
	}
	if (command != NULL && command[0] != '\0')
		ok = read_command(command, buf, &len, why);
	else if (file != NULL && file[0] != '\0')
		ok = read_key_file(file, buf, &len, why);
	else
	{
		snprintf(why, 256, "Neither hipaa_guard.master_key_command nor hipaa_guard.master_key_file is set.");
		return false;
	}
	if (!ok)
	{
		hg_wipe(buf, sizeof(buf));
		return false;
	}
	problem = hg_key_text_parse(buf, len, raw);
	len = hg_key_text_trimmed_len(buf, len);
	hg_wipe(buf, sizeof(buf));
	if (problem != HG_KEY_TEXT_OK)
	{
		if (problem == HG_KEY_TEXT_BAD_LENGTH)
			snprintf(why, 256, "The master key has %zu characters; it must be %d hexadecimal characters (256 bits).",
					 len, HG_KEY_TEXT_HEX_LEN);
		else
			snprintf(why, 256, "The master key contains characters that are not hexadecimal digits.");
		hg_wipe(raw, sizeof(raw));
		return false;
	}
	ok = hg_hkdf_sha256(raw, HG_KEY_LEN, "hipaa_guard data key wrapping v1",
						slot->kek.wrap_key, HG_KEY_LEN) == HG_CRYPTO_OK &&
		hg_hkdf_sha256(raw, HG_KEY_LEN, "hipaa_guard master key fingerprint v1",
					   slot->kek.fingerprint, HG_FINGERPRINT_LEN) == HG_CRYPTO_OK;
	hg_wipe(raw, sizeof(raw));
	if (!ok)
	{
		snprintf(why, 256, "OpenSSL could not derive keys from the master key.");
		return false;
	}
	slot->loaded = true;
	return true;
}

/*
 * Load the current and, when configured, the previous master key.  Called
 * once in the postmaster; problems are logged, not raised.
 */
void
hg_masterkey_load_all(void)
{
	char		why[256];

	ensure_locked_page();
	load_source = (hg_master_key_command && hg_master_key_command[0]) ?
		"hipaa_guard.master_key_command" :
		(hg_master_key_file && hg_master_key_file[0]) ?
		"hipaa_guard.master_key_file" : "none";
	if (load_one(hg_master_key_command, hg_master_key_file,
				 &locked->current, why))
	{
		load_problem[0] = '\0';
		ereport(LOG,
				(errmsg("hipaa_guard master key loaded from %s, fingerprint %s",
						load_source, hg_fingerprint_hex(locked->current.kek.fingerprint))));
	}
	else
	{
		strlcpy(load_problem, why, sizeof(load_problem));
		ereport(WARNING,
				(errmsg("hipaa_guard master key not loaded"),
				 errdetail_internal("%s", load_problem),
				 errhint("Encrypted values cannot be read or written until the master key is configured and the server restarted.")));
	}

	if ((hg_previous_master_key_command && hg_previous_master_key_command[0]) ||
		(hg_previous_master_key_file && hg_previous_master_key_file[0]))
	{
		if (!load_one(hg_previous_master_key_command, hg_previous_master_key_file,
					  &locked->previous, why))
			ereport(WARNING,
					(errmsg("hipaa_guard previous master key not loaded"),
					 errdetail_internal("%s", why)));
	}
}

/*
 * Return the current master key, or raise the one documented error when it
 * is not loaded.
 */
const HgKek *
hg_masterkey_current(void)
{
	if (locked == NULL || !locked->current.loaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("hipaa_guard master key not loaded"),
				 errdetail_internal("%s", load_problem),
				 errhint("Correct what the detail names in hipaa_guard.master_key_command or hipaa_guard.master_key_file, or in the key itself, and restart the server.")));
	ensure_locked_page();
	return &locked->current.kek;
}

const HgKek *
hg_masterkey_previous(void)
{
	if (locked == NULL || !locked->previous.loaded)
		return NULL;
	ensure_locked_page();
	return &locked->previous.kek;
}

/* Return the loaded master key with this fingerprint, or NULL. */
const HgKek *
hg_masterkey_by_fingerprint(const uint8_t *fingerprint)
{
	const HgKek *current = hg_masterkey_current();
	const HgKek *previous = hg_masterkey_previous();

	if (memcmp(current->fingerprint, fingerprint, HG_FINGERPRINT_LEN) == 0)
		return current;
	if (previous != NULL &&
		memcmp(previous->fingerprint, fingerprint, HG_FINGERPRINT_LEN) == 0)
		return previous;
	return NULL;
}

const char *
hg_masterkey_source(void)
{
	return load_source;
}

/* Format a fingerprint as hex for messages; fingerprints are not secret. */
char *
hg_fingerprint_hex(const uint8_t *fingerprint)
{
	char	   *out = palloc(HG_FINGERPRINT_LEN * 2 + 1);

	for (int i = 0; i < HG_FINGERPRINT_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", fingerprint[i]);
	return out;
}

bool
hg_masterkey_is_loaded(void)
{
	return locked != NULL && locked->current.loaded;
}
