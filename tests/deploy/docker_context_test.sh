#!/usr/bin/env bash
# deploy/Dockerfile's build stage, without Docker (no engine on CI): copies
# exactly the paths its COPY lines name into an empty folder, checks that
# deploy/Dockerfile.dockerignore lets the same paths through, and runs the
# stage's CMake configure command there. CMake stops at configure time on a
# missing folder or source file, so a component the image build forgets
# (auth/ was missing once) fails here instead of in someone's docker build.
# Usage: docker_context_test.sh REPO_ROOT
set -euo pipefail
root=${1:?usage: $0 REPO_ROOT}
dockerfile=$root/deploy/Dockerfile
ignore=$root/deploy/Dockerfile.dockerignore
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"

# COPY <src> <dst> in the build stage (COPY --from=… copies between stages).
mapfile -t copied < <(awk '$1 == "COPY" && $2 !~ /^--/ { print $2 }' "$dockerfile")
((${#copied[@]} > 0)) || { echo "no COPY lines in $dockerfile" >&2; exit 1; }
for path in "${copied[@]}"; do
  cp -r "$root/$path" "$work/src/$path"
done

# The allowlist (!path lines) must hold exactly what is copied.
diff <(printf '%s\n' "${copied[@]%/}" | sort) <(sed -n 's/^!//p' "$ignore" | sed 's|/$||' | sort) || {
  echo "FAIL: $ignore allows other paths than $dockerfile copies (left: COPY, right: allowlist)" >&2
  exit 1
}

configure=$(grep -m1 '^RUN cmake -S \. -B build' "$dockerfile" | sed -e 's/^RUN //' -e 's/ *\\$//')
[[ -n $configure ]] || { echo "no 'RUN cmake -S . -B build' line in $dockerfile" >&2; exit 1; }
echo "in a folder holding only ${copied[*]}: $configure"
(cd "$work/src" && eval "$configure" >"$work/configure.log" 2>&1) || {
  cat "$work/configure.log" >&2
  echo "FAIL: the Dockerfile's build stage does not configure with what it copies" >&2
  exit 1
}
targets=$(cd "$work/src" && ninja -C build -t targets all)
for target in notify-gateway notifyctl; do
  grep -q "^$target:" <<<"$targets" || { echo "FAIL: no $target target in the image build" >&2; exit 1; }
done
echo "ok: the Dockerfile's build stage configures notify-gateway and notifyctl from what it copies"
