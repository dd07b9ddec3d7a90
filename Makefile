# Cortex -- GNU Make build.
#   make                  static + shared library and the cortex CLI
#   make test             build and run every test (ends with "N passed, N failed")
#   make demo             train the MLP on the Fashion-MNIST subset shipped in data/
#   make bench            Cortex vs PyTorch ratios (needs python3-torch for the PyTorch side)
#   make install PREFIX=/usr/local
#   make check-exports    libcortex.so exports the public API (include/) and nothing else
#   make fuzz             libFuzzer targets in build/fuzz/ (clang; tools/fuzz_ci.sh runs them)
#   make onnx-test        the ONNX conformance runner on Debian's libonnx-testdata node tests
#   make readme-onnx      rewrite README.md's per-op ONNX conformance table from that run
#   make mpi-test         data-parallel training over MPI: tests/dist under mpirun -np 2 and 3 (MPI=1)
# Options: BLAS=auto|openblas|builtin  OPENMP=1|0  PORTABLE=0|1  SAN=0|1  CC=gcc|clang  MPI=auto|1|0
CC       ?= cc
BLAS     ?= auto
OPENMP   ?= 1
PORTABLE ?= 0
SAN      ?= 0
MPI      ?= auto
PREFIX   ?= /usr/local

# Goals that compile nothing skip the checks below.
NOBUILD_GOALS := clean print-variant print-config
BUILDING := $(if $(MAKECMDGOALS),$(filter-out $(NOBUILD_GOALS),$(MAKECMDGOALS)),all)

# OpenBLAS: pkg-config, or (without pkg-config) the usual install locations,
# probed by compiling a tiny program (tools/find_openblas.sh).
# An OpenMP build with gcc (GNU libgomp) takes the OpenMP build of OpenBLAS
# when it is installed (Debian: libopenblas-openmp-dev), so that OpenBLAS's
# threads and Cortex's loops are one pool; clang's OpenMP runtime is LLVM's
# libomp, so clang builds keep the pthread build (never two OpenMP runtimes).
IS_CLANG := $(findstring clang,$(shell $(CC) --version 2>/dev/null | head -n 1))
OPENBLAS_OPENMP := $(if $(and $(filter 1,$(OPENMP)),$(if $(IS_CLANG),,gcc)),1,0)
ifneq ($(filter auto openblas,$(BLAS)),)
  OPENBLAS_FLAGS := $(shell CX_OPENBLAS_OPENMP=$(OPENBLAS_OPENMP) tools/find_openblas.sh "$(CC)" $(EXTRA_CFLAGS))
  ifeq ($(BLAS),auto)
    BLAS := $(if $(OPENBLAS_FLAGS),openblas,builtin)
  else ifeq ($(OPENBLAS_FLAGS)$(if $(BUILDING),,skip),)
    $(error BLAS=openblas: OpenBLAS not found (no cblas.h / libopenblas that links). Install it: as root 'apt-get update && apt-get install -y libopenblas-dev pkg-config', as a user 'sudo apt-get install -y libopenblas-dev pkg-config'; or build with BLAS=builtin)
  endif
endif
ifeq ($(filter openblas builtin,$(BLAS)),)
  $(error BLAS=$(BLAS): use BLAS=auto, openblas or builtin)
endif

# MPI (data-parallel training, include/cortex/dist.h): on when mpicc is found
# (Debian: openmpi-bin libopenmpi-dev); the compile and link flags are Open
# MPI's `mpicc --showme:compile` / `--showme:link`, used with $(CC) (another
# MPI: give MPI_CFLAGS and MPI_LIBS). MPI=0 builds the single-process API exactly
# as before; MPI=1 builds go to their own variant directory (...-mpi).
MPICC ?= mpicc
ifeq ($(MPI),auto)
  MPI := $(if $(shell command -v $(MPICC) 2>/dev/null),1,0)
endif
ifeq ($(MPI),1)
  ifndef MPI_LIBS
    MPI_CFLAGS := $(shell $(MPICC) --showme:compile 2>/dev/null)
    MPI_LIBS   := $(shell $(MPICC) --showme:link 2>/dev/null)
  endif
  ifeq ($(MPI_LIBS)$(if $(BUILDING),,skip),)
    $(error MPI=1: no MPI found ('$(MPICC) --showme:link' gave nothing). Install Open MPI: as root 'apt-get update && apt-get install -y openmpi-bin libopenmpi-dev', as a user 'sudo apt-get install -y openmpi-bin libopenmpi-dev'; or build with MPI=0)
  endif
else ifneq ($(MPI),0)
  $(error MPI=$(MPI): use MPI=auto, 1 or 0)
endif

CFLAGS_BASE := -std=c11 -pthread -Wall -Wextra -Wpedantic -fno-math-errno -D_POSIX_C_SOURCE=200809L -Iinclude -fPIC
# clang reports every `omp simd` loop it does not vectorise at -O1 (sanitizer builds)
ifneq (,$(IS_CLANG))
  CFLAGS_BASE += -Wno-pass-failed
endif
ifeq ($(SAN),1)
  OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDSAN := -fsanitize=address,undefined
else
  OPT := -O3 -g
endif
ifeq ($(PORTABLE),0)
  OPT += -march=native
endif
DEFS :=
LIBS := -lm
ifeq ($(BLAS),openblas)
  DEFS += -DCX_HAVE_CBLAS $(filter -I% -D%,$(OPENBLAS_FLAGS))
  LIBS += $(filter-out -I% -D%,$(OPENBLAS_FLAGS))
endif
ifeq ($(OPENMP),1)
  OMPFLAG := -fopenmp
endif
ifeq ($(MPI),1)
  DEFS += -DCX_HAVE_MPI
  LIBS += $(MPI_LIBS)
endif
ZLIB_LIBS := $(shell pkg-config --libs zlib 2>/dev/null || echo -lz)
PNG_CFLAGS := $(shell pkg-config --cflags libpng 2>/dev/null)
PNG_LIBS := $(shell pkg-config --libs libpng 2>/dev/null || echo -lpng)
# giflib (Debian libgif-dev) for the animated GIF writer (src/io/gif.c)
GIF_LIBS := -lgif
# protobuf-c (Debian libprotobuf-c-dev, protobuf-c-compiler) and ONNX's schema
# (Debian libonnx-dev) for the ONNX reader (src/io/onnx*.c): onnx.proto is
# compiled by protoc-c into $(B)/gen/ at build time.
PROTOC_C   ?= protoc-c
ONNX_PROTO ?= /usr/include/onnx/onnx.proto
PROTOBUF_C_LIBS := $(shell pkg-config --libs libprotobuf-c 2>/dev/null || echo -lprotobuf-c)
LIBS += $(ZLIB_LIBS) $(PNG_LIBS) $(GIF_LIBS) $(PROTOBUF_C_LIBS)

# Preflight: the compiler, the zlib / libpng / giflib / protobuf-c headers, protoc-c
# and onnx.proto, checked once before anything is compiled; a missing one stops
# make with the Debian package to install (tools/preflight.sh).
ifneq ($(BUILDING),)
  PREFLIGHT := $(shell PROTOC_C="$(PROTOC_C)" ONNX_PROTO="$(ONNX_PROTO)" tools/preflight.sh "$(CC)" $(EXTRA_CFLAGS) $(PNG_CFLAGS))
  ifneq ($(PREFLIGHT),)
    $(error $(PREFLIGHT))
  endif
endif

CFLAGS  := $(CFLAGS_BASE) $(OPT) $(DEFS) $(OMPFLAG) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(OMPFLAG) $(LDSAN) $(EXTRA_LDFLAGS)

VARIANT := $(notdir $(CC))-$(BLAS)$(if $(findstring CX_OPENBLAS_OPENMP,$(OPENBLAS_FLAGS)),-openmp)-omp$(OPENMP)-san$(SAN)$(if $(filter 1,$(PORTABLE)),-portable)$(if $(filter 1,$(MPI)),-mpi)
B := build/$(VARIANT)

SRC   := $(sort $(wildcard src/*/*.c))
# the op table, generated from every CX_OP_DEF line of the sources
OPTABLE := $(B)/gen/optable.c
# ONNX's schema compiled by protoc-c (onnx.pb-c.c / .h)
ONNXPB := $(B)/gen/onnx.pb-c.c
OBJ   := $(SRC:%.c=$(B)/%.o) $(B)/gen/optable.o $(B)/gen/onnx.pb-c.o
CLI   := $(sort $(wildcard cli/*.c))
TESTS := $(sort $(wildcard tests/*/*.c))
TBIN  := $(patsubst tests/%.c,$(B)/tests/%,$(TESTS))
EXS   := $(sort $(wildcard examples/*.c))
EXBIN := $(patsubst examples/%.c,$(B)/examples/%,$(EXS))
BENCHS:= $(sort $(wildcard bench/*.c))
BBIN  := $(patsubst bench/%.c,$(B)/bench/%,$(BENCHS))

# The shared library is versioned: libcortex.so.MAJOR.MINOR.PATCH with the
# SONAME libcortex.so.MAJOR (programs record that name), plus the links
# libcortex.so.MAJOR and libcortex.so (for -lcortex) beside it.
VERSION := $(shell sed -n 's/^\#define CORTEX_VERSION "\(.*\)"/\1/p' include/cortex.h)
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))
SONAME  := libcortex.so.$(SOMAJOR)
LIBA  := $(B)/libcortex.a
LIBSO := $(B)/libcortex.so.$(VERSION)
BIN   := $(B)/cortex

.PHONY: all lib test examples bench bench-build demo install uninstall clean print-variant print-config check-exports readme-ops readme-onnx fuzz fuzz-check build/cortex onnx-test mpi-test
all: lib $(BIN) build/cortex
lib: $(LIBA) $(LIBSO)

print-variant: ; @echo $(B)
print-config:
	@echo "variant $(B)"; echo "BLAS $(BLAS)"; echo "BLAS flags $(strip $(OPENBLAS_FLAGS))"; echo "MPI $(MPI) $(strip $(MPI_CFLAGS))"; echo "libs $(LIBS)"

# Header dependencies: every compile writes a .d file next to its output
# (-MMD: the headers it included, -MP: a phony target per header so a deleted
# header does not break the build); they are included at the end of this file.
# Objects are compiled with -c (the .d is named after the .o); tests, examples
# and benchmarks are compiled and linked in one step, so their .d file is named
# explicitly (-MF) with the binary as its target (-MT).
DEPFLAGS = -MMD -MP
BINDEPFLAGS = -MMD -MP -MF $@.d -MT $@

$(B)/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) $(PNG_CFLAGS) -Isrc -I$(B)/gen -c $< -o $@

# only the distributed-training source includes <mpi.h>
$(B)/src/dist/dist.o: CFLAGS += $(MPI_CFLAGS)

$(OPTABLE): $(SRC) tools/gen_optable.sh
	@mkdir -p $(dir $@)
	tools/gen_optable.sh $@ $(SRC)

$(B)/gen/optable.o: $(OPTABLE) Makefile
	$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

# protoc-c writes onnx.pb-c.c and onnx.pb-c.h (from a copy of the schema, so
# the generated file names do not depend on where it is installed)
$(B)/gen/onnx.pb-c.h: $(ONNXPB)
$(ONNXPB): $(ONNX_PROTO)
	@mkdir -p $(dir $@)
	cp $(ONNX_PROTO) $(B)/gen/onnx.proto
	cd $(B)/gen && $(PROTOC_C) --c_out=. onnx.proto

$(B)/gen/onnx.pb-c.o: $(ONNXPB) Makefile
	$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

# the ONNX reader includes the generated header
$(patsubst %.c,$(B)/%.o,$(filter src/io/onnx%.c,$(SRC))): $(B)/gen/onnx.pb-c.h

$(LIBA): $(OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The shared library exports the public API only: a linker version script made
# from the public headers (tools/gen_exports.sh) lists every cx_ function and
# variable they declare and makes every other symbol local. The static library
# keeps all symbols (the tests use internal ones). Check: make check-exports.
PUBHDR := include/cortex.h $(sort $(wildcard include/cortex/*.h))
MAP    := $(B)/libcortex.map

$(MAP): $(PUBHDR) tools/gen_exports.sh
	@mkdir -p $(dir $@)
	tools/gen_exports.sh $(PUBHDR) > $@.tmp && mv $@.tmp $@

$(LIBSO): $(OBJ) $(MAP)
	$(CC) -shared -Wl,-soname,$(SONAME) -o $@ $(OBJ) -Wl,--version-script=$(MAP) $(LDFLAGS) $(LIBS)
	ln -sfn $(notdir $@) $(B)/$(SONAME) && ln -sfn $(SONAME) $(B)/libcortex.so

$(BIN): $(CLI:%.c=$(B)/%.o) $(LIBA)
	$(CC) -o $@ $^ $(LDFLAGS) $(LIBS) $(PNG_LIBS)

# build/cortex: a link to the CLI of the last build (`make`, `make demo` and
# `make test` update it), so the README's commands have one
# place to find it.
build/cortex: $(BIN)
	@ln -sfn $(VARIANT)/cortex $@

$(B)/tests/%: tests/%.c $(LIBA) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(BINDEPFLAGS) $(PNG_CFLAGS) -Isrc -Itests -I$(B)/gen $< -o $@ $(LIBA) $(LDFLAGS) $(LIBS)

$(B)/examples/%: examples/%.c $(LIBA) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(BINDEPFLAGS) $(PNG_CFLAGS) $< -o $@ $(LIBA) $(LDFLAGS) $(LIBS) $(PNG_LIBS)

$(B)/bench/%: bench/%.c $(LIBA) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(BINDEPFLAGS) $(PNG_CFLAGS) -Isrc $< -o $@ $(LIBA) $(LDFLAGS) $(LIBS)

test: $(TBIN) $(BIN) build/cortex
	@echo "== tests ($(VARIANT), BLAS=$(BLAS))"
	@CORTEX_BIN=$(BIN) tools/run_tests.sh $(TBIN)

examples: $(EXBIN)

# README.md's list of ops, rewritten from the op table (after adding an op)
readme-ops: $(BIN)
	tools/update_readme_ops.sh $(BIN)

readme-onnx: $(B)/tools/onnx_conformance
	tools/update_readme_onnx.sh $(B)/tools/onnx_conformance $(ONNX_TESTDATA)

bench-build: $(BBIN)

# The ONNX conformance runner (tools/onnx_conformance.c) over Debian's
# libonnx-testdata node tests: a table per op and "N passed of M"; it fails
# only when a test of a supported op fails.
ONNX_TESTDATA ?= /usr/share/libonnx-testdata/data/node
$(B)/tools/onnx_conformance: tools/onnx_conformance.c $(LIBA) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(BINDEPFLAGS) $< -o $@ $(LIBA) $(LDFLAGS) $(LIBS)

onnx-test: $(B)/tools/onnx_conformance
	@[ -d "$(ONNX_TESTDATA)" ] || { echo "make onnx-test: no $(ONNX_TESTDATA): install libonnx-testdata (as root 'apt-get install -y libonnx-testdata')"; exit 1; }
	$(B)/tools/onnx_conformance $(ONNX_TESTDATA)

# Data-parallel training over MPI (include/cortex/dist.h): tests/dist/test_dist
# on 2 and 3 processes (N-process weights = 1-process weights), a failing
# rank must stop mpirun within seconds, and `mpirun -np 2 cortex train` must
# match a one-process run (tools/mpi_test.sh).
mpi-test: $(B)/tests/dist/test_dist $(BIN)
	@[ "$(MPI)" = 1 ] || { echo "make mpi-test: this build has no MPI (MPI=$(MPI)): install Open MPI (as root 'apt-get install -y openmpi-bin libopenmpi-dev') and build with MPI=1"; exit 1; }
	tools/mpi_test.sh $(B)/tests/dist/test_dist $(BIN)

demo: $(BIN) build/cortex
	@tools/demo.sh build/cortex

bench: $(BBIN) $(BIN) $(B)/examples/g2p
	tools/bench.sh $(B)

check-exports: $(LIBSO)
	tools/check_exports.sh $(LIBSO)

# libFuzzer targets: one per reader of untrusted bytes (fuzz/fuzz_*.c, seed
# corpora in fuzz/corpus/NAME/, inputs that once failed in fuzz/regressions/NAME/).
# Built with clang and its fuzzer runtime (Debian: clang libclang-rt-14-dev)
# into build/fuzz/, the library compiled again with coverage and ASan+UBSan
# (no OpenMP, no BLAS). Run: tools/fuzz_ci.sh [seconds per target], or by
# hand: build/fuzz/fuzz_idx fuzz/corpus/idx -max_total_time=60
FUZZ_CC     ?= clang
FZ          := build/fuzz
FUZZ_CFLAGS := -std=c11 -pthread -Wall -Wextra -Wpedantic -Wno-pass-failed -fno-math-errno -D_POSIX_C_SOURCE=200809L \
               -Iinclude -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_SRCS   := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BINS   := $(patsubst fuzz/%.c,$(FZ)/%,$(FUZZ_SRCS))
FUZZ_OBJ    := $(SRC:%.c=$(FZ)/%.o) $(FZ)/gen/optable.o $(FZ)/gen/onnx.pb-c.o

fuzz: fuzz-check $(FUZZ_BINS)
.SECONDARY: $(FUZZ_OBJ) $(FZ)/gen/optable.c $(FZ)/gen/onnx.pb-c.c

fuzz-check:
	@echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' | \
	  $(FUZZ_CC) -x c -fsanitize=fuzzer,address,undefined - -o $(FZ)-check.out 2>/dev/null || { \
	  echo "make fuzz: '$(FUZZ_CC)' cannot build libFuzzer targets; install clang and its fuzzer runtime:"; \
	  echo "  apt-get install clang libclang-rt-14-dev    (Debian 12)"; exit 1; }
	@rm -f $(FZ)-check.out

$(FZ)/%.o: %.c Makefile | fuzz-check
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(DEPFLAGS) $(PNG_CFLAGS) -Isrc -I$(FZ)/gen -c $< -o $@

$(FZ)/gen/onnx.pb-c.h: $(FZ)/gen/onnx.pb-c.c
$(FZ)/gen/onnx.pb-c.c: $(ONNX_PROTO)
	@mkdir -p $(dir $@)
	cp $(ONNX_PROTO) $(FZ)/gen/onnx.proto
	cd $(FZ)/gen && $(PROTOC_C) --c_out=. onnx.proto

$(FZ)/gen/onnx.pb-c.o: $(FZ)/gen/onnx.pb-c.c Makefile
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(patsubst %.c,$(FZ)/%.o,$(filter src/io/onnx%.c,$(SRC))): $(FZ)/gen/onnx.pb-c.h

$(FZ)/gen/optable.c: $(SRC) tools/gen_optable.sh
	@mkdir -p $(dir $@)
	tools/gen_optable.sh $@ $(SRC)

$(FZ)/gen/optable.o: $(FZ)/gen/optable.c Makefile
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FZ)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.h $(FUZZ_OBJ) Makefile
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< -o $@ $(FUZZ_OBJ) -lm $(ZLIB_LIBS) $(PNG_LIBS) $(GIF_LIBS) $(PROTOBUF_C_LIBS)

# Installs headers, libcortex.a, libcortex.so.$(VERSION) with its links, the
# CLI and cortex.pc. Installed as root into a directory the dynamic linker
# searches (/usr/local/lib on Debian), ldconfig is run so programs linked with
# `pkg-config --libs cortex` find libcortex.so.$(SOMAJOR) at once; otherwise a
# note says what to do (LD_LIBRARY_PATH, or ld.so.conf.d + ldconfig).
LIBDIR := $(PREFIX)/lib
install: lib $(BIN)
	install -d $(DESTDIR)$(PREFIX)/include/cortex $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/cortex.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 include/cortex/*.h $(DESTDIR)$(PREFIX)/include/cortex/
	install -m 644 $(LIBA) $(DESTDIR)$(LIBDIR)/
	rm -f $(DESTDIR)$(LIBDIR)/libcortex.so $(DESTDIR)$(LIBDIR)/$(SONAME)
	install -m 755 $(LIBSO) $(DESTDIR)$(LIBDIR)/
	ln -s libcortex.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -s $(SONAME) $(DESTDIR)$(LIBDIR)/libcortex.so
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBS@|$(LIBS) $(OMPFLAG)|' -e 's|@VERSION@|$(VERSION)|' \
	  tools/cortex.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/cortex.pc
	@if [ -z "$(DESTDIR)" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null 2>&1; then ldconfig; fi; \
	  if ! (/sbin/ldconfig -p 2>/dev/null || ldconfig -p 2>/dev/null) | grep -q '=> $(LIBDIR)/$(SONAME)$$'; then \
	    echo "note: $(LIBDIR) is not searched by the dynamic linker: run programs linked with -lcortex"; \
	    echo "      with LD_LIBRARY_PATH=$(LIBDIR), or (as root) add $(LIBDIR) to /etc/ld.so.conf.d/cortex.conf and run ldconfig"; \
	  fi; \
	  echo "installed: $(PREFIX)/bin/cortex, $(LIBDIR)/libcortex.so.$(VERSION) (SONAME $(SONAME)), headers, cortex.pc"; \
	  case ":$$PATH:" in *":$(PREFIX)/bin:"*) ;; *) echo "note: $(PREFIX)/bin is not on your PATH";; esac; \
	fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/cortex.h $(DESTDIR)$(LIBDIR)/libcortex.a $(DESTDIR)$(LIBDIR)/libcortex.so \
	  $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libcortex.so.$(VERSION) $(DESTDIR)$(PREFIX)/bin/cortex \
	  $(DESTDIR)$(LIBDIR)/pkgconfig/cortex.pc
	rm -rf $(DESTDIR)$(PREFIX)/include/cortex
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null 2>&1; then ldconfig; fi

clean:
	rm -rf build

# Generated header dependencies (see DEPFLAGS above); absent before the first build.
DEPS := $(OBJ:.o=.d) $(CLI:%.c=$(B)/%.d) $(TBIN:=.d) $(EXBIN:=.d) $(BBIN:=.d) $(FUZZ_OBJ:.o=.d) $(B)/tools/onnx_conformance.d
-include $(DEPS)
