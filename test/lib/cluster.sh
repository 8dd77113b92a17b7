# shellcheck shell=bash
# test/lib/cluster.sh: shared steps of test/run and demo/run.
#
# Source this file from bash. It installs missing Debian packages, builds and
# installs the extension, and runs a throwaway PostgreSQL 15 cluster that
# preloads hipaa_guard and reads a fresh random master key. The cluster lives
# in a private temporary directory owned by the "postgres" OS user. It has no
# TCP listener, only a Unix socket in that directory, and trusts local
# connections. An EXIT trap stops it and deletes the directory.
#
# When the caller is root (as CI is, in a fresh clone owned by root), every
# server-side command runs as "postgres" through runuser. A caller that is not
# root runs the cluster as its own user.
#
# Settings read from the environment:
#   HG_CFLAGS      extra compiler flags, passed to make as COPT (CI: -Werror)
#   HG_NO_PRELOAD  when 1, start without shared_preload_libraries and without
#                  the master key setting, to check this library on its own
#   HG_SERVER_ENV  extra environment of the server, as space-separated
#                  NAME=VALUE words (test/sanitize/check.sh sets LD_PRELOAD)

HG_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HG_PG_BINDIR=/usr/lib/postgresql/15/bin
HG_PG_CONFIG=$HG_PG_BINDIR/pg_config
# On bookworm, postgresql-15 contains the contrib modules such as pgcrypto (it
# provides postgresql-contrib-15). perl contains prove, the TAP test modules
# need libipc-run-perl, and a TAP test runs keys in pg_cron's background workers.
# libkrb5-dev has gssapi/gssapi.h, which the server header libpq/libpq-be.h
# includes on Debian's build, and src/session.c includes libpq-be.h.
# openssl makes the certificates of the TLS test.
HG_PACKAGES=(make gcc perl postgresql-15 postgresql-server-dev-15 postgresql-15-cron libssl-dev libkrb5-dev openssl libipc-run-perl)
PATH=$HG_PG_BINDIR:$PATH
export HG_REPO PATH

# Set by hg_cluster_start and cleared by hg_cluster_stop.
HG_TMPDIR=
HG_PGDATA=
HG_MASTER_KEY_FILE=

hg__is_root()
{
	[ "$(id -u)" -eq 0 ]
}

# Install whichever of HG_PACKAGES is missing. A machine that has them all
# never calls apt-get. Without root, print the apt-get command and exit 1.
hg_install_packages()
{
	local package status
	local missing=()

	for package in "${HG_PACKAGES[@]}"; do
		status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
		if [ "$status" != installed ]; then
			missing+=("$package")
		fi
	done

	if [ ${#missing[@]} -eq 0 ]; then
		return 0
	fi

	if ! hg__is_root; then
		echo "error: missing Debian packages: ${missing[*]}" >&2
		echo "Install them as root with: apt-get update && apt-get install -y ${missing[*]}" >&2
		exit 1
	fi

	echo "Installing missing Debian packages: ${missing[*]}"
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

# Build the extension in the repository and install it into PostgreSQL 15.
# When HG_CFLAGS is set, clean first, so that every object file is compiled
# with those flags and none is left over from an earlier build without them.
hg_build_install()
{
	local pkglibdir
	local make_args=(-C "$HG_REPO" "PG_CONFIG=$HG_PG_CONFIG")

	# Pass COPT only when HG_CFLAGS is set, because a COPT on the command line
	# replaces the one that the Makefile sets.
	if [ -n "${HG_CFLAGS:-}" ]; then
		make_args+=("COPT=$HG_CFLAGS")
	fi

	pkglibdir=$("$HG_PG_CONFIG" --pkglibdir)
	if [ ! -w "$pkglibdir" ]; then
		echo "error: $pkglibdir is not writable, so make install would fail. Run as root." >&2
		return 1
	fi

	if [ -n "${HG_CFLAGS:-}" ]; then
		make "${make_args[@]}" clean
	fi
	make "${make_args[@]}" -j"$(nproc)"
	make "${make_args[@]}" install
}

# Run a command as the "postgres" OS user when root, otherwise as the current
# user. The cluster's PG* and HG_* variables and PATH are passed on.
hg_as_pg()
{
	local name
	local vars=("PATH=$PATH")

	for name in PGHOST PGPORT PGUSER PGDATABASE HG_REPO HG_TMPDIR HG_PGDATA \
		HG_MASTER_KEY_FILE HG_WORKDIR; do
		if [ -n "${!name:-}" ]; then
			vars+=("$name=${!name}")
		fi
	done

	if hg__is_root; then
		runuser -u postgres -- env "${vars[@]}" "$@"
	else
		env "${vars[@]}" "$@"
	fi
}

# Print a port in 54000-54999 that no local PostgreSQL server uses. The
# private socket directory already prevents a clash at startup. A port that is
# free everywhere also makes a client that lost PGHOST fail to connect instead
# of reaching another server on this machine.
hg__pick_port()
{
	local port ready

	for _ in $(seq 1 50); do
		port=$((54000 + RANDOM % 1000))
		if [ -e "/tmp/.s.PGSQL.$port" ] || [ -e "/var/run/postgresql/.s.PGSQL.$port" ]; then
			continue
		fi
		# pg_isready exits 2 when no server responds on that port.
		pg_isready -q -h 127.0.0.1 -p "$port" -t 2 && ready=0 || ready=$?
		if [ "$ready" -ne 2 ]; then
			continue
		fi
		echo "$port"
		return 0
	done

	echo "error: no free port found in 54000-54999 after 50 attempts" >&2
	return 1
}

# Write a random 256-bit key as 64 hex characters, readable only by its owner.
hg__write_master_key()
{
	local file=$1
	local key

	key=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
	if [ ${#key} -ne 64 ]; then
		echo "error: reading 32 bytes from /dev/urandom failed" >&2
		return 1
	fi
	(umask 077 && printf '%s' "$key" > "$file")
	if hg__is_root; then
		chown postgres:postgres "$file"
	fi
}

# Create, configure and start the cluster, export PGHOST, PGPORT, PGUSER,
# PGDATABASE, HG_TMPDIR, HG_PGDATA and HG_MASTER_KEY_FILE, and install the
# EXIT, INT and TERM traps that stop it. The traps replace any the caller set.
hg_cluster_start()
{
	local port
	local server_env=()

	# Use /tmp rather than $TMPDIR, because "postgres" must be able to reach the
	# directory and the socket path must stay under the 107-byte sun_path limit.
	HG_TMPDIR=$(mktemp -d /tmp/hipaa_guard.XXXXXX)
	HG_PGDATA=$HG_TMPDIR/data
	HG_MASTER_KEY_FILE=$HG_TMPDIR/master.key
	export HG_TMPDIR HG_PGDATA HG_MASTER_KEY_FILE

	trap 'hg_cluster_stop $?' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	chmod 0700 "$HG_TMPDIR"
	if hg__is_root; then
		chown postgres:postgres "$HG_TMPDIR"
	fi

	hg__write_master_key "$HG_MASTER_KEY_FILE" || return 1
	port=$(hg__pick_port) || return 1

	# Run from /, because "postgres" may not be allowed into the caller's directory.
	(cd / && hg_as_pg initdb --pgdata="$HG_PGDATA" --username=postgres \
		--auth-local=trust --auth-host=reject --encoding=UTF8 --no-locale \
		--no-sync > "$HG_TMPDIR/initdb.log") || {
		cat "$HG_TMPDIR/initdb.log" >&2
		return 1
	}

	{
		echo
		echo "# Added by test/lib/cluster.sh"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$HG_TMPDIR'"
		echo "port = $port"
		echo "fsync = off"
		echo "max_worker_processes = 16"
		echo "max_parallel_workers_per_gather = 2"
		if [ "${HG_NO_PRELOAD:-0}" != 1 ]; then
			echo "shared_preload_libraries = 'hipaa_guard'"
			echo "hipaa_guard.master_key_file = '$HG_MASTER_KEY_FILE'"
		fi
	} >> "$HG_PGDATA/postgresql.conf"

	read -r -a server_env <<< "${HG_SERVER_ENV:-}"
	(cd / && hg_as_pg env "${server_env[@]}" pg_ctl start --wait --pgdata="$HG_PGDATA" \
		--log="$HG_TMPDIR/server.log" > /dev/null) || {
		echo "error: the test cluster failed to start; see the server log below" >&2
		return 1
	}

	export PGHOST=$HG_TMPDIR PGPORT=$port PGUSER=postgres PGDATABASE=postgres
	echo "Started a PostgreSQL 15 cluster on socket $PGHOST, port $PGPORT"
}

# Stop the cluster and delete its directory. A non-zero first argument (the
# exit status of the calling script, as the EXIT trap passes it) first prints
# the last 50 lines of the server log to stderr. Calling it again does nothing.
hg_cluster_stop()
{
	local exit_status=${1:-0}

	if [ -z "$HG_TMPDIR" ] || [ ! -d "$HG_TMPDIR" ]; then
		return 0
	fi

	if [ -f "$HG_PGDATA/postmaster.pid" ]; then
		(cd / && hg_as_pg pg_ctl stop --mode=fast --wait --pgdata="$HG_PGDATA" \
			> /dev/null 2>&1) || true
	fi

	if [ "$exit_status" -ne 0 ] && [ -s "$HG_TMPDIR/server.log" ]; then
		echo "--- last 50 lines of $HG_TMPDIR/server.log ---" >&2
		tail -n 50 "$HG_TMPDIR/server.log" >&2
		echo "--- end of server log ---" >&2
	fi

	rm -rf "$HG_TMPDIR"
	HG_TMPDIR=
	HG_PGDATA=
	HG_MASTER_KEY_FILE=
	unset PGHOST PGPORT PGUSER PGDATABASE
}

# Return 0 when "postgres" can reach the repository and read every file and
# directory in it outside .git, otherwise print why and return 1.
hg__repo_readable_by_pg()
{
	local unreadable

	if ! runuser -u postgres -- test -x "$HG_REPO"; then
		echo "The postgres user cannot reach $HG_REPO:"
		namei -l "$HG_REPO"
		return 1
	fi

	unreadable=$(cd / && runuser -u postgres -- find "$HG_REPO" \
		-path "$HG_REPO/.git" -prune -o \
		\( ! -readable -o \( -type d ! -executable \) \) -print -quit 2>&1)
	if [ -n "$unreadable" ]; then
		echo "The postgres user cannot read $unreadable"
		return 1
	fi
}

# Set and export HG_WORKDIR, the directory the tests run in as "postgres":
# the repository itself when "postgres" can read all of it, otherwise a copy
# owned by "postgres" inside the cluster directory, deleted along with it.
# Call it after hg_build_install, so that the copy has the built files.
hg_workdir_prepare()
{
	if ! hg__is_root || hg__repo_readable_by_pg; then
		HG_WORKDIR=$HG_REPO
	else
		HG_WORKDIR=$HG_TMPDIR/work
		echo "Running the tests from a copy in $HG_WORKDIR"
		mkdir "$HG_WORKDIR"
		tar -C "$HG_REPO" --exclude=./.git -cf - . | tar -C "$HG_WORKDIR" -xf -
		chown -R postgres:postgres "$HG_WORKDIR"
	fi
	export HG_WORKDIR
}

# Remove the outputs of an earlier test run from HG_WORKDIR and, when root,
# create them empty and owned by "postgres". pg_regress and the TAP tests write
# there, but "postgres" cannot create files in a repository that root owns.
hg_test_outputs_prepare()
{
	(
		cd "$HG_WORKDIR" || exit 1
		rm -rf results tmp_check log regression.diffs regression.out
		if hg__is_root; then
			mkdir results tmp_check log
			: > regression.diffs
			: > regression.out
			chown postgres:postgres results tmp_check log regression.diffs regression.out
		fi
	)
}
