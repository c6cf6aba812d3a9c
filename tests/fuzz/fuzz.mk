# libFuzzer targets for the I/O-free code in common/ (fuzz_session: the
# request path of a session, decode to reply, over common/; fuzz_trie:
# insert/remove/match sequences against a brute-force model; fuzz_history:
# the history store against the model in history_model.h; fuzz_evquery:
# the /api/events query to its sub requests, and the SSE framing).
#
#   make -f tests/fuzz/fuzz.mk top_srcdir=ABS [FUZZ_SECONDS=N] GOAL
#
# GOAL is one of
#   build     compile every target into $(FUZZ_BUILD)
#   run       fuzz each target for FUZZ_SECONDS [60] (run-NAME: one target)
#   smoke     fuzz each target for SMOKE_SECONDS [10] (what CI runs)
#   regress   run every seed of the source corpora once, no fuzzing
#   clean     remove $(FUZZ_BUILD)
#
# Everything is written under FUZZ_BUILD [./_fuzz, from the directory make
# runs in; git ignores it]: objects, binaries, a working copy of each corpus
# (new inputs accumulate there across runs), crash artifacts and logs. The seed
# corpora in tests/fuzz/corpus/ are only read. Any crash, leak, sanitizer
# report or broken invariant makes the goal fail; the reproducer is left in
# $(FUZZ_BUILD)/artifacts/NAME/ and the log in $(FUZZ_BUILD)/logs/.
#
# The targets run one after another; `make -j2 ... run` runs two at once.
# Needs clang with libFuzzer (Debian: clang-14 libclang-rt-14-dev) and the
# jansson headers.

top_srcdir ?= $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/../..)
FUZZ_SECONDS ?= 60
SMOKE_SECONDS ?= 10
FUZZ_BUILD ?= $(CURDIR)/_fuzz
FUZZ_CC ?= $(shell command -v clang-14 || command -v clang || echo clang)
PKG_CONFIG ?= pkg-config
# Extra libFuzzer options for every run, e.g. FUZZ_OPTS=-jobs=2.
FUZZ_OPTS ?=

TARGETS = request topic acl users config payload session trie history evquery

# Longest input per target: a request frame well past the usual sizes, a
# users file past the 4096-byte line limit, a JSON text deep enough to leave
# the scanner's 1024 inline nesting levels.
MAX_LEN_request = 8192
MAX_LEN_topic = 2048
MAX_LEN_acl = 2048
MAX_LEN_users = 12288
MAX_LEN_config = 16384
MAX_LEN_payload = 4096
MAX_LEN_session = 8192
MAX_LEN_trie = 4096
MAX_LEN_history = 4096
MAX_LEN_evquery = 4096

DICT_request = json.dict
DICT_topic = topic.dict
DICT_acl = topic.dict
DICT_users = users.dict
DICT_config = json.dict
DICT_payload = json.dict
DICT_session = json.dict
DICT_trie = topic.dict
DICT_history = history.dict
DICT_evquery = evquery.dict

override top_srcdir := $(abspath $(top_srcdir))
override FUZZ_BUILD := $(abspath $(FUZZ_BUILD))
FUZZ_DIR = $(top_srcdir)/tests/fuzz
SEEDS = $(FUZZ_DIR)/corpus
SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS = -g -O1 -std=gnu11 -fno-omit-frame-pointer $(SAN)
FUZZ_CPPFLAGS = -I$(top_srcdir)/common -I$(FUZZ_DIR) -D_GNU_SOURCE \
	$(shell $(PKG_CONFIG) --cflags jansson)
FUZZ_LIBS = $(shell $(PKG_CONFIG) --libs jansson)

COMMON_SRCS = $(wildcard $(top_srcdir)/common/*.c)
COMMON_OBJS = $(patsubst $(top_srcdir)/common/%.c,$(FUZZ_BUILD)/obj/%.o,\
	$(COMMON_SRCS))
BINS = $(addprefix $(FUZZ_BUILD)/fuzz_,$(TARGETS))

.PHONY: build run smoke regress clean check-cc \
	$(addprefix run-,$(TARGETS)) $(addprefix regress-,$(TARGETS))
.DELETE_ON_ERROR:

build: $(BINS)

check-cc:
	@mkdir -p $(FUZZ_BUILD)
	@printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n);\n%s\n' \
	    'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }' \
	    > $(FUZZ_BUILD)/probe.c
	@$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_BUILD)/probe.c \
	    -o $(FUZZ_BUILD)/probe >/dev/null 2>&1 || { \
	  echo "fuzz.mk: $(FUZZ_CC) cannot build libFuzzer targets" \
	       "(install clang-14 and libclang-rt-14-dev, or set FUZZ_CC)" >&2; \
	  exit 1; }

$(FUZZ_BUILD)/obj/%.o: $(top_srcdir)/common/%.c \
		$(wildcard $(top_srcdir)/common/*.h) | check-cc
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_CPPFLAGS) \
	    -c $< -o $@

$(FUZZ_BUILD)/libcommon.a: $(COMMON_OBJS)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_DIR)/fuzz_%.c $(FUZZ_DIR)/fuzz.h \
		$(FUZZ_BUILD)/libcommon.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Wall -Wextra -fsanitize=fuzzer \
	    $(FUZZ_CPPFLAGS) $< \
	    $(FUZZ_BUILD)/libcommon.a $(FUZZ_LIBS) -o $@

# The history store's model, shared with tests/unit/check_history.c.
$(FUZZ_BUILD)/fuzz_history: $(FUZZ_DIR)/history_model.h

run: $(addprefix run-,$(TARGETS))

smoke:
	$(MAKE) -f $(lastword $(MAKEFILE_LIST)) top_srcdir=$(top_srcdir) \
	    FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(SMOKE_SECONDS) run

# The working corpus is a copy: libFuzzer adds the inputs it finds there,
# and the seeds under tests/fuzz/corpus stay as committed.
$(addprefix run-,$(TARGETS)): run-%: $(FUZZ_BUILD)/fuzz_%
	@mkdir -p $(FUZZ_BUILD)/corpus/$* $(FUZZ_BUILD)/artifacts/$* \
	    $(FUZZ_BUILD)/logs
	@cp $(SEEDS)/$*/* $(FUZZ_BUILD)/corpus/$*/
	@echo "fuzz_$*: $(FUZZ_SECONDS) s, log in $(FUZZ_BUILD)/logs/$*.log"
	@cd $(FUZZ_BUILD) && ./fuzz_$* -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=$(MAX_LEN_$*) -dict=$(FUZZ_DIR)/dict/$(DICT_$*) \
	    -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/artifacts/$*/ $(FUZZ_OPTS) \
	    corpus/$* > logs/$*.log 2>&1; rc=$$?; \
	  if [ $$rc -ne 0 ]; then \
	    tail -n 80 logs/$*.log; \
	    echo "fuzz_$*: FAILED (exit $$rc), reproducer in" \
	         "$(FUZZ_BUILD)/artifacts/$*/" >&2; \
	    exit 1; \
	  fi; \
	  grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::average_exec_per_sec)' \
	      logs/$*.log | tr '\n' ' '; echo

regress: $(addprefix regress-,$(TARGETS))

# Each seed as a file argument: libFuzzer runs it once and writes nothing.
$(addprefix regress-,$(TARGETS)): regress-%: $(FUZZ_BUILD)/fuzz_%
	@mkdir -p $(FUZZ_BUILD)/logs
	@cd $(FUZZ_BUILD) && ./fuzz_$* -timeout=25 $(SEEDS)/$*/* \
	    > logs/$*-regress.log 2>&1 \
	  || { tail -n 60 logs/$*-regress.log; exit 1; }
	@echo "fuzz_$*: $$(ls $(SEEDS)/$* | wc -l) seeds pass"

clean:
	rm -rf $(FUZZ_BUILD)
