#!/usr/bin/env bash
# Prints the Debian upstream version for this checkout, derived from
# `git describe` so that packages sort the way the history does:
#   tag v1.2.3 exactly      -> 1.2.3
#   4 commits after v1.2.3  -> 1.2.3+git4.gabc1234
#   no release tag yet      -> 0.0~git<commits>.g<hash>  (sorts before 0.0.1 and any release)
#   uncommitted changes     -> +dirty appended (a tree that isn't the tag)
# Outside git (tarball builds) it prints 0.0~unknown.
set -euo pipefail

if ! git rev-parse --git-dir >/dev/null 2>&1 || ! git rev-parse HEAD >/dev/null 2>&1; then
	echo "0.0~unknown"
	exit 0
fi
dirty=""
if ! git diff --quiet HEAD -- 2>/dev/null; then
	dirty="+dirty"
fi
if desc=$(git describe --tags --long --match 'v[0-9]*' 2>/dev/null); then
	# v1.2.3-4-gabc1234
	hash=${desc##*-}
	rest=${desc%-*}
	count=${rest##*-}
	tag=${rest%-*}
	ver=${tag#v}
	ver=${ver//-/\~} # v1.2.3-rc1 -> 1.2.3~rc1 (sorts before 1.2.3)
	if [ "$count" = 0 ]; then
		echo "${ver}${dirty}"
	else
		echo "${ver}+git${count}.${hash}${dirty}"
	fi
else
	echo "0.0~git$(git rev-list --count HEAD).g$(git rev-parse --short=7 HEAD)${dirty}"
fi
