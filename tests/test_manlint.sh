#!/bin/sh
# test_manlint.sh - the man pages are part of the build: they must lint clean
# at mandoc's warning level, libevf.3 must name every public function of
# evf.h, the C examples in libevf.3 must compile against evf.h, and
# evf.conf.5 must describe every key of the settings the library knows.
#
# An example is the .Bd -literal block that follows a comment line
#   .\" example: NAME.c
# Exit 0 pass, 1 fail, 77 skip (no mandoc).

srcdir=${EVF_TEST_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
cc=${CC:-cc}

if ! command -v mandoc >/dev/null 2>&1; then
	echo "test_manlint: mandoc not found, skipping"
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/evf-manlint.XXXXXX") || {
	echo "test_manlint: cannot create a temporary directory" >&2
	exit 1
}
trap 'rm -rf "$tmp"' EXIT
failed=0

fail() {
	echo "test_manlint: FAIL: $*" >&2
	failed=1
}

# ---- lint ------------------------------------------------------------------
pages=$(ls "$srcdir"/man/*.[1-8] 2>/dev/null)
[ -n "$pages" ] || fail "no man pages under $srcdir/man"
for page in evfctl.1 evf-top.1 libevf.3 evf.conf.5; do
	[ -f "$srcdir/man/$page" ] || fail "man/$page is missing"
done
for page in $pages; do
	# -Tlint prints nothing for a clean page; any line is a finding.
	out=$(mandoc -Tlint -Wwarning "$page" 2>&1)
	if [ -n "$out" ]; then
		printf '%s\n' "$out" >&2
		fail "${page#"$srcdir"/} has mandoc warnings"
	else
		echo "ok: ${page#"$srcdir"/} lints clean"
	fi
done

# ---- every public function of evf.h is documented in libevf.3 --------------
header="$srcdir/libevf/evf.h"
libpage="$srcdir/man/libevf.3"
# Prototypes start at column 0 with their return type; typedefs of function
# pointers have "(*" before the name and so do not match.
funcs=$(grep -E '^[a-z][^(/]*[ *]evf_[a-z0-9_]+\(' "$header" |
	sed -E 's/^[^(]*[ *](evf_[a-z0-9_]+)\(.*/\1/' | sort -u)
[ -n "$funcs" ] || fail "found no functions in $header"
# A function needs its prototype in SYNOPSIS and a description after it.
sed -n '/^\.Sh SYNOPSIS/,/^\.Sh /p' "$libpage" >"$tmp/synopsis"
sed -n '/^\.Sh DESCRIPTION/,$p' "$libpage" >"$tmp/body"
for fn in $funcs; do
	grep -Eq "^\.F[no] $fn( |\$)" "$tmp/synopsis" ||
		fail "libevf.3 SYNOPSIS lacks the prototype of $fn"
	grep -Eq "^\.(It )?Fn $fn( |\$)" "$tmp/body" ||
		fail "libevf.3 does not describe $fn"
done
echo "ok: libevf.3 documents the $(echo "$funcs" | wc -l) functions of evf.h"

# ---- the examples compile --------------------------------------------------
# Undo the roff escapes the examples use (\e, \&, \-) and refuse any other,
# so that what compiles is what the reader sees.
awk -v dir="$tmp" '
	/^\.\\" example: [A-Za-z0-9_.-]+\.c$/ { name = $3; want = 1; next }
	want && /^\.Bd -literal/ { file = dir "/" name; inblock = 1; want = 0
		print name > (dir "/list"); next }
	inblock && /^\.Ed/ { close(file); inblock = 0; next }
	inblock {
		line = $0
		gsub(/\\e/, "\001", line)
		gsub(/\\&/, "", line)
		gsub(/\\-/, "-", line)
		if (line ~ /\\/) {
			printf "%s: unsupported roff escape: %s\n", name, $0 > "/dev/stderr"
			bad = 1
		}
		gsub(/\001/, "\\", line)
		print line > file
	}
	END { if (want || inblock) { print "unterminated example " name > "/dev/stderr"; bad = 1 }
		exit bad }
' "$libpage" || fail "could not extract the examples of libevf.3"

# The PostgreSQL example needs libpq's header; without it, skip just that one.
pq_cflags=$(pkg-config --cflags libpq 2>/dev/null) || pq_cflags=
if [ -z "$pq_cflags" ] && ! pkg-config --exists libpq 2>/dev/null; then
	sed -i '/^outbox_pg\.c$/d' "$tmp/list"
	echo "skip: example outbox_pg.c (no libpq)"
fi
if [ ! -s "$tmp/list" ]; then
	fail "libevf.3 has no marked examples"
else
	for name in $(cat "$tmp/list"); do
		if "$cc" -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes \
			-Wmissing-prototypes -Wformat=2 -Wvla -Werror \
			-I"$srcdir/libevf" $pq_cflags -fsyntax-only "$tmp/$name"; then
			echo "ok: example $name compiles"
		else
			fail "example $name in libevf.3 does not compile"
		fi
	done
fi

# ---- evfctl.1 covers what `evfctl --help` and `evfctl help CMD` offer ------
# Each option must head an item of its own list.  Only when the program is
# built (make check sets EVFCTL).
if [ -n "${EVFCTL:-}" ] && [ -x "$EVFCTL" ]; then
	page="$srcdir/man/evfctl.1"
	sed -n '/^\.Sh GLOBAL OPTIONS/,/^\.Sh /p' "$page" >"$tmp/global"
	sed -n '/^\.Sh COMMANDS/,/^\.Sh /p' "$page" >"$tmp/commands"
	"$EVFCTL" --help >"$tmp/help" || fail "evfctl --help failed"
	for opt in $(sed -n '/^Global options:/,/^$/p' "$tmp/help" |
		grep -oE -- '(^| )--?[A-Za-z][a-z-]*' | sed 's/^ *-//'); do
		grep -Eq "^\.It (.* )?Fl $opt( |\$)" "$tmp/global" ||
			fail "evfctl.1 GLOBAL OPTIONS lacks -$opt"
	done
	cmds=$(sed -n '/^Commands/,/^$/p' "$tmp/help" | awk 'NR > 1 && NF { print $1 }')
	[ -n "$cmds" ] || fail "found no commands in evfctl --help"
	for cmd in $cmds; do
		grep -Eq "^\.(It )?Cm $cmd( |\$)" "$tmp/commands" ||
			fail "evfctl.1 COMMANDS lacks $cmd"
		"$EVFCTL" help "$cmd" >"$tmp/cmdhelp" || fail "evfctl help $cmd failed"
		for opt in $(grep -oE -- '--[a-z][a-z-]*' "$tmp/cmdhelp" | sort -u); do
			[ "$opt" = --help ] && continue
			grep -Eq "^\.It Fl -${opt#--}( |\$)" "$tmp/commands" ||
				fail "evfctl.1 COMMANDS lacks $cmd $opt"
		done
	done
	echo "ok: evfctl.1 covers the commands and options of evfctl --help"

	# ---- evf.conf.5 has every key of `evfctl config`, in its section ------
	# An empty file and a clean environment: the keys, not anybody's values.
	conf="$srcdir/man/evf.conf.5"
	: >"$tmp/empty.conf"
	env -i PATH="$PATH" EVF_CONFIG="$tmp/empty.conf" "$EVFCTL" config --json \
		>"$tmp/config.json" || fail "evfctl config --json failed"
	# {"name":"evf.batch_size",...,"env":"EVF_BATCH_SIZE"} -> "evf.batch_size EVF_BATCH_SIZE"
	grep -oE '"name":"[a-z_]+\.[a-z_]+","value":(null|"[^"]*"),"source":"[^"]*","env":"[A-Z_]+"' \
		"$tmp/config.json" | sed -E 's/^"name":"([^"]*)".*"env":"([^"]*)"$/\1 \2/' >"$tmp/keys"
	[ -s "$tmp/keys" ] || fail "found no keys in evfctl config --json"
	while read -r name var; do
		section=${name%%.*}
		key=${name#*.}
		sed -n "/^\.Sh THE \[$section\] SECTION/,/^\.Sh /p" "$conf" >"$tmp/section"
		grep -Eq "^\.It Cm $key( |\$)" "$tmp/section" ||
			fail "evf.conf.5 lacks $key in THE [$section] SECTION"
		grep -Eq "^\.Ev $var( |\$)" "$tmp/section" ||
			fail "evf.conf.5 does not give $var for $name"
	done <"$tmp/keys"
	# and nothing documented that the library does not know
	for section in evf metrics health; do
		for key in $(sed -n "/^\.Sh THE \[$section\] SECTION/,/^\.Sh /p" "$conf" |
			sed -n 's/^\.It Cm \([a-z_]*\).*/\1/p'); do
			grep -q "^$section\.$key " "$tmp/keys" ||
				fail "evf.conf.5 describes $section.$key, which evfctl config does not know"
		done
	done
	echo "ok: evf.conf.5 describes the $(wc -l <"$tmp/keys") keys of evfctl config"
else
	echo "test_manlint: EVFCTL not built, skipping the --help and evf.conf cross-checks"
fi

exit $failed
