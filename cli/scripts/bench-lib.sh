# Shared by the cluster benchmark scripts (sourced): a fresh local cluster of one HSM in $H, activated, with
# the admin and the crypto user alice logged in (sessions and password files in $S). The caller sets H, S and
# AGENT_PROPERTIES (lines for HOME/agent.properties), and runs from the repository's root.
export HSMBRIDGE_NO_BUILD=1
bench_cluster_up() {
  ./hsmbridge --home "$H" down >/dev/null 2>&1 || true
  rm -rf "$H" "$S"; mkdir -p "$S"; chmod 700 "$S"
  for u in admin alice; do printf 'password of %s for tests\n' $u > "$S/$u.password"; chmod 600 "$S/$u.password"; done
  mkdir -p "$H"
  printf '%b' "$AGENT_PROPERTIES" > "$H/agent.properties"
  ./hsmbridge --home "$H" up --hsms 1 --port 0 | tail -1
  ./hsmbridge --home "$H" cluster activate --password-file "$S/admin.password" | head -1
  HSMBRIDGE_SESSION_FILE=$S/admin.session ./hsmbridge --home "$H" login --user admin --password-file "$S/admin.password"
  HSMBRIDGE_SESSION_FILE=$S/admin.session ./hsmbridge --home "$H" user create alice --role CU --password-file "$S/alice.password"
  HSMBRIDGE_SESSION_FILE=$S/alice.session ./hsmbridge --home "$H" login --user alice --password-file "$S/alice.password"
}
