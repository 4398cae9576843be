# Reads `dpkg-query -W -f='${db:Status-Abbrev}\t${Package}\t${Provides}\t${Depends}, ${Pre-Depends}\t${Essential}\t${Priority}\n'`
# and prints the installed packages that only the test packages need: the
# Depends/Pre-Depends closure of `test` (a space-separated list, -v) minus the
# closure of `run` and of the base system (Essential or Priority required
# packages, which every Debian 12 machine has). Every installed alternative of "a | b" and every installed
# provider of a virtual package counts, so the run closure errs on the large
# side: a package is hidden only when nothing the run path installs can need it.
BEGIN { FS = "\t" }
function names(field, out,    parts, n, i, alt, m, j, name) {
  # "a (>= 1) | b:any, c" -> out["a"], out["b"], out["c"]
  n = split(field, parts, ",")
  for (i = 1; i <= n; i++) {
    m = split(parts[i], alt, "|")
    for (j = 1; j <= m; j++) {
      name = alt[j]
      sub(/\(.*\)/, "", name); sub(/\[.*\]/, "", name); sub(/:.*/, "", name)
      gsub(/[ \t]/, "", name)
      if (name != "") out[name] = 1
    }
  }
}
substr($1, 2, 1) == "i" {  # installed, whatever the selection (ii, hi, ...)
  installed[$2] = 1
  deps[$2] = $4
  if ($5 == "yes" || $6 == "required") run = run " " $2
  delete provided
  names($3, provided)
  for (v in provided) providers[v] = providers[v] " " $2
}
function closure(roots, seen,    queue, head, tail, n, r, i, p, d, next_names, q, k, prov) {
  head = 1; tail = 0
  n = split(roots, r, " ")
  for (i = 1; i <= n; i++) if (r[i] in installed && !(r[i] in seen)) { seen[r[i]] = 1; queue[++tail] = r[i] }
  while (head <= tail) {
    p = queue[head++]
    delete next_names
    names(deps[p], next_names)
    for (d in next_names) {
      if (d in installed && !(d in seen)) { seen[d] = 1; queue[++tail] = d }
      if (d in providers) {
        k = split(providers[d], prov, " ")
        for (q = 1; q <= k; q++) if (!(prov[q] in seen)) { seen[prov[q]] = 1; queue[++tail] = prov[q] }
      }
    }
  }
}
END {
  closure(run, run_set)
  closure(test, test_set)
  for (p in test_set) if (!(p in run_set)) print p
}
