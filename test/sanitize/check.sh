#!/usr/bin/env bash
# Run the pg_regress suite (REGRESS in the Makefile) against hipaa_guard built
# with AddressSanitizer and UndefinedBehaviorSanitizer (gcc), on a throwaway
# cluster. Exits 1 when a regression test fails or when the server log
# contains a sanitizer report.
#
# The installed hipaa_guard is left alone. The sanitized build is installed
# into a private copy of the server's directory tree: copies of postgres and
# pg_ctl, and symbolic links to everything else in the lib and share
# directories. PostgreSQL finds its lib and share directories relative to the
# postgres executable, so the copy loads the sanitized hipaa_guard.so and
# every other library from the real installation.
#
# postgres itself is not instrumented: the sanitizer runtimes are preloaded
# into the server with LD_PRELOAD, and leak detection is off because the
# server never frees much of what it allocates. AddressSanitizer checks only
# the accesses in hipaa_guard's own code, and only against malloc block
# boundaries: a palloc chunk is a slice of a larger malloc block, so an
# overrun that stays inside that block is not reported.
#
# On failure, the server log and pg_regress output are copied into
# test/sanitize/output.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"

SANITIZE_FLAGS='-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer'
OUTPUT_DIR=$HG_REPO/test/sanitize/output

build_dir=
install_dir=

cleanup()
{
	if [ -n "$build_dir" ]; then
		rm -rf "$build_dir"
	fi
}

# Build the sanitized library in a copy, so that the object files of the
# repository keep their normal flags, and install it under install_dir.
# with_llvm=no skips the JIT bitcode, which clang would build without the
# sanitizers.
build_sanitized()
{
	local make_args=(-C "$build_dir/src" "PG_CONFIG=$HG_PG_CONFIG" with_llvm=no
		"COPT=$SANITIZE_FLAGS ${HG_CFLAGS:-}")

	echo "=== build with $SANITIZE_FLAGS ==="
	mkdir "$build_dir/src"
	tar -C "$HG_REPO" --exclude=./.git --exclude=./test/fuzz/build \
		--exclude=./test/sanitize/output --exclude='*.o' --exclude='*.bc' \
		--exclude='*.so' --exclude=./results --exclude=./tmp_check --exclude=./log \
		-cf - . | tar -C "$build_dir/src" -xf -
	make "${make_args[@]}" -j"$(nproc)" > "$build_dir/build.log" 2>&1 || {
		cat "$build_dir/build.log" >&2
		echo "error: the sanitized build failed" >&2
		return 1
	}
	if ! ldd "$build_dir/src/hipaa_guard.so" | grep -q libasan; then
		echo "error: hipaa_guard.so is not linked with libasan; check the build flags" >&2
		return 1
	fi
	make "${make_args[@]}" install "DESTDIR=$install_dir" > /dev/null

	# See test/sanitize/asan_init_first.c for why the server needs this.
	gcc -shared -fPIC -O1 -Wl,-z,initfirst -o "$build_dir/asan_init_first.so" \
		"$HG_REPO/test/sanitize/asan_init_first.c" "$(gcc -print-file-name=libasan.so)"
}

# Link every file of the real lib and share directories that "make install"
# did not put into install_dir, and copy postgres and pg_ctl, which must not
# be links because PostgreSQL resolves links to find its own directory.
complete_private_install()
{
	local pkglibdir sharedir dir entry

	pkglibdir=$("$HG_PG_CONFIG" --pkglibdir)
	sharedir=$("$HG_PG_CONFIG" --sharedir)
	mkdir -p "$install_dir$HG_PG_BINDIR"
	cp "$HG_PG_BINDIR/postgres" "$HG_PG_BINDIR/pg_ctl" "$install_dir$HG_PG_BINDIR/"

	for dir in "$pkglibdir" "$sharedir" "$sharedir/extension"; do
		mkdir -p "$install_dir$dir"
		for entry in "$dir"/*; do
			if [ ! -e "$install_dir$entry" ]; then
				ln -s "$entry" "$install_dir$entry"
			fi
		done
	done
}

# Print the sanitizer reports in a server log, if any, and return 1 then.
find_sanitizer_reports()
{
	local log=$1
	local pattern='ERROR: AddressSanitizer|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer'

	if grep -qE "$pattern" "$log"; then
		echo "error: sanitizer reports in the server log:" >&2
		grep -E -A 30 "$pattern" "$log" | head -n 200 >&2
		return 1
	fi
}

# Return 1 unless the server loads its libraries from the private tree.
check_private_pkglibdir()
{
	local expected=$install_dir$("$HG_PG_CONFIG" --pkglibdir)
	local actual

	actual=$(hg_as_pg psql -X -A -t -c "SELECT setting FROM pg_catalog.pg_config WHERE name = 'PKGLIBDIR'")
	if [ "$actual" != "$expected" ]; then
		echo "error: the server loads libraries from \"$actual\", not from the sanitized build in \"$expected\"" >&2
		return 1
	fi
}

# Start a cluster from the private tree with the sanitizer runtimes preloaded
# and run pg_regress in the build copy. Runs in a subshell, whose EXIT trap
# (set by hg_cluster_start) stops the cluster.
run_regress()
{
	local status=0
	local path

	# libasan must come first, as it does for an instrumented executable.
	HG_SERVER_ENV="LD_PRELOAD=$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so):$build_dir/asan_init_first.so"
	HG_SERVER_ENV+=" ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:print_summary=1"
	HG_SERVER_ENV+=" UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:print_summary=1"
	export HG_SERVER_ENV
	PATH=$install_dir$HG_PG_BINDIR:$PATH

	if hg__is_root; then
		chown -R postgres:postgres "$build_dir"
	fi
	hg_cluster_start
	check_private_pkglibdir
	HG_WORKDIR=$build_dir/src
	export HG_WORKDIR

	echo "=== pg_regress with sanitizers ==="
	(cd "$HG_WORKDIR" && hg_as_pg make installcheck "PG_CONFIG=$HG_PG_CONFIG" TAP_TESTS=) \
		|| status=$?

	if ! find_sanitizer_reports "$HG_TMPDIR/server.log"; then
		status=1
	fi
	if [ "$status" -ne 0 ]; then
		mkdir -p "$OUTPUT_DIR"
		cp "$HG_TMPDIR/server.log" "$OUTPUT_DIR/server.log"
		for path in regression.diffs regression.out; do
			if [ -e "$HG_WORKDIR/$path" ]; then
				cp "$HG_WORKDIR/$path" "$OUTPUT_DIR/$path"
			fi
		done
		if [ -s "$HG_WORKDIR/regression.diffs" ]; then
			echo "=== regression.diffs ==="
			cat "$HG_WORKDIR/regression.diffs"
		fi
		echo "The server log and pg_regress output are in $OUTPUT_DIR" >&2
	fi
	return "$status"
}

cd "$HG_REPO"
hg_install_packages
rm -rf "$OUTPUT_DIR"
build_dir=$(mktemp -d /tmp/hipaa_guard_sanitize.XXXXXX)
install_dir=$build_dir/install
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

build_sanitized
complete_private_install

# Not "(run_regress) || status=$?", because bash ignores set -e inside a
# command whose failure is tested.
set +e
(set -e; run_regress)
status=$?
set -e
if [ "$status" -ne 0 ]; then
	echo "error: the sanitizer check failed" >&2
	exit 1
fi
echo "Sanitizer check passed: pg_regress passed and the server log has no sanitizer report"
