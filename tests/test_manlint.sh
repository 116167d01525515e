#!/bin/sh
# test_manlint.sh - the man pages are part of the build: they must lint clean
# at mandoc's warning level, libevf.3 must name every public function of
# evf.h, the examples of every page must compile, link and run (C against
# the built libevf, shell with the built evfctl), evfctl.1 must cover every
# command and option of evfctl --help, and evf.conf.5 every key of the
# settings the library knows.  (evf-top.1's KEYS are checked against the
# program by tests/tui/test_tui.sh.)
#
# An example is the .Bd -literal block that follows a comment line
#   .\" example: NAME.c [run | daemon | shared]   or   NAME.sh run
# Exit 0 pass, 1 fail, 77 skip (no mandoc).

srcdir=${EVF_TEST_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# The compiler and flags of the build (make check passes them), so that the
# examples link against a sanitized libevf too.
cc=${EVF_TEST_CC:-${CC:-cc}}
test_cflags=${EVF_TEST_CFLAGS:-}
test_ldflags=${EVF_TEST_LDFLAGS:-}

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
for page in evfctl.1 evf-top.1 libevf.3 evf.conf.5 evf_open.3 evf_emit.3 \
	evf_register.3 evf_worker_run.3 evf-recipes.7 evf-troubleshooting.7; do
	[ -f "$srcdir/man/$page" ] || fail "man/$page is missing"
done
# Every page is installed: named in man_MANS of Makefile.am.
for page in $pages; do
	grep -Eq "man/${page##*/}([[:space:]]|$)" "$srcdir/Makefile.am" ||
		fail "man/${page##*/} is not in man_MANS of Makefile.am"
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

# ---- the examples compile, link and run ------------------------------------
# Every page may hold examples.  Undo the roff escapes they use (\e, \&, \-)
# and refuse any other, so that what is tested is what the reader sees.
# The marker says what to do with the block:
#   .\" example: NAME.c          compile and link
#   .\" example: NAME.c run      ... and run it: exit 0 expected
#   .\" example: NAME.c daemon   ... run it, stop it with SIGTERM after a
#                                second: exit 0 expected
#   .\" example: NAME.c shared   compile and link as a shared object (a plugin)
#   .\" example: NAME.sh run     run it with sh -e, evfctl in PATH
# The examples of one page run in order in one empty directory of their
# own (a program that makes app.db serves the ones after it), with no
# evf.conf and no EVF_DATABASE_URL.  Without a built libevf (no make
# check) C examples are only compiled and nothing runs.
builddir=${EVF_TEST_BUILDDIR:-}
linkable=
if [ -n "$builddir" ] && [ -e "$builddir/libevf/.libs/libevf.so" ] &&
	[ -f "$builddir/libevf/libevf-uninstalled.pc" ]; then
	linkable=yes
	LD_LIBRARY_PATH="$builddir/libevf/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	export LD_LIBRARY_PATH
fi
have_libpq=
pkg-config --exists libpq 2>/dev/null && have_libpq=yes
: >"$tmp/empty.conf"
nexamples=0

# extract PAGE DIR: the examples of PAGE into DIR, and DIR/list of "NAME MODE".
extract() {
	awk -v dir="$2" '
		/^\.\\" example: [A-Za-z0-9_.-]+\.(c|sh)( (run|daemon|shared))?$/ {
			name = $3; mode = ($4 == "" ? "build" : $4); want = 1; next }
		/^\.\\" example:/ { printf "bad example marker: %s\n", $0 > "/dev/stderr"; bad = 1; next }
		want && /^\.Bd -literal/ { file = dir "/" name; inblock = 1; want = 0
			print name, mode > (dir "/list"); next }
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
	' "$1"
}

# run_example DIR NAME MODE: run a built example in DIR; false on failure.
run_example() {
	(
		cd "$1" || exit 1
		unset EVF_DATABASE_URL
		EVF_CONFIG="$tmp/empty.conf"
		PATH="${EVFCTL:+$(dirname "$EVFCTL"):}$PATH"
		export EVF_CONFIG PATH
		case $2:$3 in
		*.sh:run) sh -e "./$2" ;;
		*:run) "./${2%.c}" ;;
		*:daemon)
			"./${2%.c}" &
			pid=$!
			sleep 1
			kill -TERM "$pid" 2>/dev/null || exit 1
			wait "$pid"
			;;
		esac
	) >"$1/${2}.out" 2>&1
}

for page in $pages; do
	base=${page##*/}
	dir="$tmp/ex/$base"
	mkdir -p "$dir"
	extract "$page" "$dir" || { fail "could not extract the examples of $base"; continue; }
	[ -s "$dir/list" ] || continue
	while read -r name mode; do
		nexamples=$((nexamples + 1))
		src="$dir/$name"
		case $name in
		*.sh)
			if [ "$mode" = run ] && [ -n "$linkable" ] && [ -n "${EVFCTL:-}" ]; then
				if run_example "$dir" "$name" run; then
					echo "ok: example $name of $base runs"
				else
					sed 's/^/# /' "$dir/$name.out" >&2
					fail "example $name of $base failed"
				fi
			fi
			continue
			;;
		esac
		pkgs="libevf sqlite3"
		if grep -q '<libpq-fe.h>' "$src"; then
			if [ -z "$have_libpq" ]; then
				echo "skip: example $name of $base (no libpq)"
				continue
			fi
			pkgs="$pkgs libpq"
		fi
		warn="-std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla -Werror"
		if [ -z "$linkable" ]; then
			# shellcheck disable=SC2086 # flags are words
			if "$cc" $warn -I"$srcdir/libevf" $(pkg-config --cflags $pkgs 2>/dev/null) \
				-fsyntax-only "$src"; then
				echo "ok: example $name of $base compiles"
			else
				fail "example $name of $base does not compile"
			fi
			continue
		fi
		flags=$(PKG_CONFIG_PATH="$builddir/libevf${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" \
			pkg-config --cflags --libs $pkgs) || {
			fail "pkg-config cannot give the flags of $pkgs for $name"
			continue
		}
		out="$dir/${name%.c}"
		extra=
		[ "$mode" = shared ] && { out="$out.so"; extra="-shared -fPIC"; }
		# shellcheck disable=SC2086 # flags are words
		if ! "$cc" $test_cflags $warn $extra -o "$out" "$src" $flags $test_ldflags; then
			fail "example $name of $base does not compile and link"
			continue
		fi
		case $mode in
		run | daemon)
			if run_example "$dir" "$name" "$mode"; then
				echo "ok: example $name of $base compiles, links and runs"
			else
				sed 's/^/# /' "$dir/$name.out" >&2
				fail "example $name of $base compiles but fails when run"
			fi
			;;
		*) echo "ok: example $name of $base compiles and links" ;;
		esac
	done <"$dir/list"
done
[ "$nexamples" -gt 0 ] || fail "the man pages have no marked examples"

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

	# ---- every long option the sources parse is in the help and the page --
	# The option tables of cli/*.c are what evfctl accepts; the help texts
	# are written beside them, so an option can be added to one and not
	# the other.
	"$EVFCTL" --help >"$tmp/allhelp"
	for cmd in $cmds; do
		"$EVFCTL" help "$cmd" >>"$tmp/allhelp"
	done
	srcopts=$(grep -hoE '\{ *"[a-z][a-z-]*", *(no|required|optional)_argument' \
		"$srcdir"/cli/*.c | sed -E 's/\{ *"([^"]*)".*/\1/' | sort -u)
	[ -n "$srcopts" ] || fail "found no option tables in cli/*.c"
	for opt in $srcopts; do
		grep -Eq -- "--$opt([^a-z-]|\$)" "$tmp/allhelp" ||
			fail "evfctl accepts --$opt, which no --help text shows"
		grep -Eq "Fl -$opt( |\$)" "$page" ||
			fail "evfctl accepts --$opt, which evfctl.1 does not describe"
	done
	echo "ok: the $(echo "$srcopts" | wc -l) long options of cli/*.c are in the help texts and evfctl.1"

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
