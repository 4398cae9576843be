# Arguments: a file naming the hidden packages, one a line, then every dpkg
# file list (/var/lib/dpkg/info/*.list). Prints the paths to hide: those
# that only hidden packages own, under /usr, /etc or /opt, and only the
# top-most of them (hiding a folder hides what it holds). Merged-/usr paths
# (/bin, /lib, ...) are folded into /usr first, since that is where the
# files are. Documentation (/usr/share/doc, man, info, locale, lintian) is
# left alone: nothing builds or runs from it.
FILENAME == ARGV[1] { hidden_package[$0] = 1; next }  # (FNR == NR misfires when it is empty)
FNR == 1 {
  package = FILENAME
  sub(/^.*\//, "", package); sub(/\.list$/, "", package); sub(/:.*$/, "", package)
  is_hidden = package in hidden_package
}
{
  path = $0
  sub(/^\/(bin|sbin|lib|lib32|lib64|libx32)\//, "/usr&", path)
  if (path !~ /^\/(usr|etc|opt)\/./) next
  if (path ~ /^\/usr\/share\/(doc|man|info|locale|lintian)(\/|$)/) next
  if (is_hidden) hidden[path] = 1; else other[path] = 1
}
function parent(p) { sub(/\/[^\/]*$/, "", p); return p }
END {
  for (p in hidden) if (!(p in other)) exclusive[p] = 1
  for (p in exclusive) if (!(parent(p) in exclusive)) print p
}
