#!/bin/sh
# Every C file of the daemon, the library and the tools compiles without a
# warning for a 32-bit target (gcc -m32 -fsyntax-only): a shift past the
# width of uintptr_t, or a 64-bit value cast to a pointer, is undefined or
# lossy there, and the Debian package is Architecture: any. TAP; SKIP when
# the compiler has no 32-bit libc headers (Debian: gcc-multilib).
srcdir=${MQG_SRCDIR:-$(dirname "$0")/../..}
cc=${CC:-gcc}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
# Headers this machine has only for its own architecture (OpenSSL's
# configuration, say) come from there: enough to check the syntax.
multiarch=$($cc -print-multiarch 2>/dev/null)
pkgs="libwebsockets jansson libjwt liboath openssl"
pkg-config --exists libuv 2>/dev/null && pkgs="$pkgs libuv"
pkg-config --exists libsystemd 2>/dev/null && pkgs="$pkgs libsystemd"
# shellcheck disable=SC2046,SC2086
set -- -m32 -fsyntax-only -std=gnu11 -D_GNU_SOURCE -DSYSCONFDIR='"/etc"' \
    -I. -I"$srcdir/common" -I"$srcdir/gateway" $(pkg-config --cflags $pkgs) \
    ${multiarch:+-idirafter /usr/include/$multiarch} \
    -Wall -Wextra -Wno-unused-parameter -Wshift-count-overflow \
    -Wpointer-to-int-cast -Wint-to-pointer-cast -Wformat=2 -Werror
printf '#include <stdint.h>\n#include <stdio.h>\n#include <libwebsockets.h>\n' \
    > "$tmp/probe.c"
if ! $cc "$@" "$tmp/probe.c" > "$tmp/probe.log" 2>&1; then
    echo "1..0 # SKIP $cc -m32 cannot compile for a 32-bit target (gcc-multilib)"
    exit 0
fi
files=$(cd "$srcdir" && ls common/*.c gateway/*.c tools/*.c)
echo "1..$(echo "$files" | wc -l)"
n=0
status=0
for f in $files; do
    n=$((n + 1))
    if $cc "$@" "$srcdir/$f" > "$tmp/out.log" 2>&1; then
        echo "ok $n - $f compiles for 32 bits without a warning"
    else
        echo "not ok $n - $f compiles for 32 bits without a warning"
        sed 's/^/# /' "$tmp/out.log"
        status=1
    fi
done
exit $status
