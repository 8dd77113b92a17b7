# hipaa_guard: PGXS build.
#
#   make && make install        build and install into the server of PG_CONFIG
#   test/run                     the whole test suite on a throwaway cluster
#   demo/run [SYNTHEA_DIR]       the demo on a throwaway cluster

EXTENSION = hipaa_guard
MODULE_big = hipaa_guard
OBJS = \
	src/hipaa_guard.o \
	src/crypto.o \
	src/envelope.o \
	src/masterkey.o \
	src/keyring.o \
	src/enctypes.o \
	src/rowtrigger.o \
	src/keyfuncs.o \
	src/keytext.o \
	src/deid.o \
	src/retention.o \
	src/worker.o \
	src/session.o \
	src/careteam.o \
	src/jwt.o \
	src/actor.o \
	src/auditconfig.o \
	src/auditcapture.o \
	src/auditddl.o \
	src/audittrigger.o \
	src/redact.o \
	src/auditqueue.o \
	src/sealer.o \
	src/auditchain.o \
	src/auditpack.o \
	src/auditretention.o

DATA = hipaa_guard--0.1.0.sql
EXTRA_CLEAN = hipaa_guard--0.1.0.sql results regression.diffs regression.out tmp_check log

SHLIB_LINK += -lcrypto
# -Wextra with unused parameters allowed: callbacks and PostgreSQL's headers have them.
PG_CPPFLAGS += -I$(srcdir)/src -Wall -Wextra -Wno-unused-parameter

REGRESS = types keys errors cases deid retention actor access access_roles redact audit audit_chain
REGRESS_OPTS = --load-extension=hipaa_guard
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The install script is assembled from one part per concern.
SQL_PARTS = src/sql/head.sql src/sql/roles.sql src/sql/keyring.sql src/sql/types.sql src/sql/columns.sql src/sql/deid.sql src/sql/audit.sql src/sql/audit_capture.sql src/sql/audit_redact.sql src/sql/audit_views.sql src/sql/audit_retention.sql src/sql/retention.sql src/sql/actor.sql src/sql/access.sql src/sql/access_roles.sql src/sql/grants.sql
hipaa_guard--0.1.0.sql: $(SQL_PARTS)
	cat $^ > $@

all: hipaa_guard--0.1.0.sql

# Robustness checks, none of which "make" or "make install" runs:
#
#   make fuzz-build              build the libFuzzer targets of test/fuzz (clang)
#   make fuzz [FUZZ_SECONDS=60]  run each target for FUZZ_SECONDS over its corpus
#   make fuzz-corpus             rewrite the seed corpus in test/fuzz/corpus
#   make sanitize-check          pg_regress against a build with ASan and UBSan
#   make memory-check            backend peak memory for 100,000 and 1,000,000 rows
FUZZ_CC = clang
FUZZ_SECONDS ?= 60
FUZZ_DIR = test/fuzz
FUZZ_BUILD = $(FUZZ_DIR)/build
FUZZ_TARGETS = envelope_binary envelope_text key_text jwt
FUZZ_SANITIZE = -fsanitize=address,undefined -fno-sanitize-recover=all
# The parsers include c.h, whose printf attributes clang does not know.
# FRONTEND selects the client-side build of the headers, as libpgcommon.a has.
FUZZ_CFLAGS = -g -O1 -fno-omit-frame-pointer -Wall -Wno-ignored-attributes $(COPT) -DFRONTEND \
	-I$(srcdir)/src -I$(FUZZ_DIR) -I$(includedir_server) -I$(includedir_internal)
# libpgcommon provides pg_b64_encode and pg_b64_decode for envelope.c, and
# the JSON parser, palloc and psprintf for jwt.c.
FUZZ_LIBS = $(pkglibdir)/libpgcommon.a $(pkglibdir)/libpgport.a
FUZZ_SOURCES = src/envelope.c src/keytext.c src/jwt.c
FUZZ_HEADERS = src/envelope.h src/keytext.h src/jwt.h src/crypto.h $(FUZZ_DIR)/fuzz_check.h

.PHONY: fuzz-build fuzz fuzz-corpus sanitize-check memory-check

fuzz-build: $(addprefix $(FUZZ_BUILD)/fuzz_,$(FUZZ_TARGETS)) $(FUZZ_BUILD)/make_corpus

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_DIR)/fuzz_%.c $(FUZZ_SOURCES) $(FUZZ_HEADERS)
	@mkdir -p $(FUZZ_BUILD)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_SANITIZE) -o $@ $< $(FUZZ_SOURCES) $(FUZZ_LIBS)

$(FUZZ_BUILD)/make_corpus: $(FUZZ_DIR)/make_corpus.c $(FUZZ_SOURCES) $(FUZZ_HEADERS)
	@mkdir -p $(FUZZ_BUILD)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SANITIZE) -o $@ $< $(FUZZ_SOURCES) $(FUZZ_LIBS)

# Writing the seeds into the build directory first checks that the parsers
# still agree with the layout in src/envelope.h.
fuzz: fuzz-build
	rm -rf $(FUZZ_BUILD)/seeds
	mkdir -p $(FUZZ_BUILD)/seeds
	$(FUZZ_BUILD)/make_corpus $(FUZZ_BUILD)/seeds
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash $(FUZZ_DIR)/run.sh

fuzz-corpus: $(FUZZ_BUILD)/make_corpus
	rm -rf $(FUZZ_DIR)/corpus
	mkdir -p $(FUZZ_DIR)/corpus
	$(FUZZ_BUILD)/make_corpus $(FUZZ_DIR)/corpus

sanitize-check:
	bash test/sanitize/check.sh

memory-check:
	bash test/memory/growth.sh
