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
	src/keytext.o

DATA = hipaa_guard--0.1.0.sql
EXTRA_CLEAN = hipaa_guard--0.1.0.sql results regression.diffs regression.out tmp_check log

SHLIB_LINK += -lcrypto
# -Wextra with unused parameters allowed: callbacks and PostgreSQL's headers have them.
PG_CPPFLAGS += -I$(srcdir)/src -Wall -Wextra -Wno-unused-parameter

REGRESS = types keys errors cases
REGRESS_OPTS = --load-extension=hipaa_guard
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The install script is assembled from one part per concern.
SQL_PARTS = src/sql/head.sql src/sql/roles.sql src/sql/keyring.sql src/sql/types.sql src/sql/columns.sql src/sql/grants.sql
hipaa_guard--0.1.0.sql: $(SQL_PARTS)
	cat $^ > $@

all: hipaa_guard--0.1.0.sql
