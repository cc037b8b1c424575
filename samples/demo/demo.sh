#!/usr/bin/env bash
# The end-to-end story on loopback: an Intune-like server (dmserver) and a device (dmagent)
# with a signed-in user, from a destructive PIN reset to a non-destructive one.
#
#   samples/demo/demo.sh [BUILD_DIR]
#
# Every step checks what it printed; the script exits 0 only if every step behaved as
# expected. State lives in a temporary directory that is removed at the end (DEMO_KEEP=1
# keeps it). oathtool plays the user's authenticator app; curl calls the admin API.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-${DMAGENT_BUILD_DIR:-$root/build}}"
DMSERVER="$build/samples/server/dmserver"
DMAGENT="$build/agent/dmagent"
for b in "$DMSERVER" "$DMAGENT"; do
  [[ -x "$b" ]] || { echo "demo: $b is missing; build first (scripts/build.sh)" >&2; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/dmagent-demo.XXXXXX")"
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  if [[ "${DEMO_KEEP:-0}" == "1" ]]; then echo "state kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

bold=$'\e[1m'; green=$'\e[32m'; red=$'\e[31m'; reset=$'\e[0m'
[[ -t 1 ]] || { bold=""; green=""; red=""; reset=""; }
step=0
say() { step=$((step + 1)); printf '\n%s== %d. %s%s\n' "$bold" "$step" "$*" "$reset"; }
ok() { printf '%s   ok:%s %s\n' "$green" "$reset" "$*"; }
fail() { printf '%s   FAILED:%s %s\n' "$red" "$reset" "$*" >&2; exit 1; }
expect_eq() {  # what, actual, expected
  [[ "$2" == "$3" ]] || fail "$1: expected '$3', got '$2'"
  ok "$1 = $2"
}
expect_ne() {
  [[ "$2" != "$3" ]] || fail "$1: expected a change from '$3'"
  ok "$1 changed: $3 -> $2"
}

TENANT_ID="72f988bf-86f1-41af-91ab-2d7cd011db47"
USER="alice@fabrikam.test"
PASSWORD="Correct-Horse-Battery-9"
TOTP_SECRET="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PIN1="246810"; PIN2="135790"; PIN3="864200"
# The federated IdP is dmserver's own, on its own host name: localhost here, so the loopback
# demo needs no DNS (the management service is at 127.0.0.1).
IDP_HOST="localhost"

srv() { "$DMSERVER" --state-dir "$work/server" --test-kdf --log-level warn "$@"; }
agent() { "$DMAGENT" --state-dir "$work/device" --log-level warn --pin-kdf-cost 12 "$@"; }
# The authenticator app: the code for the previous, current or next 30-second step. The
# server accepts a step once and never after a later one, and only one step either side of
# now: enrollment takes the previous step, the first sign-in the current one, the first PIN
# reset the next; the second reset waits for a fresh step (at most 31 s) for its code.
totp_prev() { oathtool --totp -b -N "now - 30 seconds" "$TOTP_SECRET"; }
totp_now() { oathtool --totp -b "$TOTP_SECRET"; }
totp_next() { oathtool --totp -b -N "now + 30 seconds" "$TOTP_SECRET"; }
wait_for_fresh_step() {
  local step=$(($(date +%s) / 30))
  while (($(date +%s) / 30 == step)); do sleep 1; done
}
container_field() { agent container show --user "$USER" --json | jq -r ".$1"; }
server_can_reset() {
  srv report --json | jq -r --arg u "$USER" \
    '[.rows[] | select(.user == $u and .can_reset != null) | .can_reset] | first // "none"'
}
server_setting_status() {  # setting-name substring
  srv report --json | jq -r --arg s "$1" \
    '[.rows[] | select(.setting | contains($s)) | .status] | first // "none"'
}

say "The admin sets up the tenant: a user with password + authenticator, a user group"
srv init >/dev/null
srv tenant add Fabrikam --id "$TENANT_ID" --federated --token-file "$work/enroll-token" >/dev/null
printf '%s\n%s\n' "$PASSWORD" "$TOTP_SECRET" | srv user add "$USER" --tenant Fabrikam >/dev/null
srv group add pin-recovery-users --kind user --tenant Fabrikam >/dev/null
srv group member pin-recovery-users "$USER" --tenant Fabrikam >/dev/null
srv group add all-devices --kind device --tenant Fabrikam >/dev/null
ok "tenant Fabrikam ($TENANT_ID), user $USER in group pin-recovery-users"

say "dmserver starts on loopback (its own CA, mutual TLS for management)"
# The binary itself in the background (not the srv function), so $! is the server's pid.
"$DMSERVER" --state-dir "$work/server" --log-level warn serve --listen 127.0.0.1 --port 0 --admin-port 0 \
  --idp-host "$IDP_HOST" --port-file "$work/port" --admin-port-file "$work/admin-port" &
server_pid=$!
for _ in $(seq 1 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
[[ -s "$work/port" ]] || fail "dmserver did not start"
port="$(cat "$work/port")"; admin_port="$(cat "$work/admin-port")"  # written first
ok "listening on https://127.0.0.1:$port (IdP at https://$IDP_HOST:$port/adfs/ls/)"
ok "admin API on its own listener, https://127.0.0.1:$admin_port"
IDP_URL="https://$IDP_HOST:$port/adfs/ls/"

say "The device enrolls as Windows does (MS-MDE2); $USER signs in at the federated IdP"
# Discovery -> Federated: the IdP page takes password + code and hands back a signed token;
# GetPolicies and RequestSecurityToken carry it; the answer is a provisioning document.
printf '%s\n%s\n' "$PASSWORD" "$(totp_prev)" | agent enroll --email "$USER" \
  --discovery-url "https://127.0.0.1:$port/EnrollmentServer/Discovery.svc" \
  --ca "$work/server/ca.pem"
expect_eq "enrollment" "$(agent status --json | jq -r .tenant_details.enrollment_kind)" "ms-mde2"
dev_id="$(agent status --json | jq -r .device_state.device_id)"
srv group member all-devices "$dev_id" --tenant Fabrikam >/dev/null
ok "device $dev_id enrolled and added to group all-devices"
# The first session: the server subscribes to the compliance report and sets the service URLs.
agent sync >/dev/null

say "$USER signs in at the server (password + code, a user token) and sets up Windows Hello"
# The token endpoint proves the user; the Hello certificate is then issued in the token's name.
printf '%s\n%s\n%s\n' "$PASSWORD" "$(totp_now)" "$PIN1" | agent signin --user "$USER"
expect_eq "CanReset" "$(container_field can_reset)" "DestructiveOnly"
thumb1="$(container_field thumbprint)"; from1="$(container_field not_before)"
agent container show --user "$USER"
agent sync
expect_eq "server sees CanReset" "$(server_can_reset)" "DestructiveOnly"

say "$USER forgets the PIN: without PIN recovery the only way is a destructive reset"
printf '%s\n%s\n%s\n' "$PASSWORD" "$(totp_next)" "$PIN2" | agent pin reset --user "$USER"
thumb2="$(container_field thumbprint)"
expect_ne "certificate thumbprint" "$thumb2" "$thumb1"
expect_eq "last reset" "$(container_field last_reset.kind)" "destructive"

say "The admin consents to both PIN reset apps and assigns an EnablePinRecovery profile"
srv consent --app both --tenant Fabrikam >/dev/null
srv profile add pin-recovery --tenant Fabrikam --format bool \
  --setting "./Device/Vendor/MSFT/PassportForWork/$TENANT_ID/Policies/EnablePinRecovery=true" >/dev/null
srv assign pin-recovery pin-recovery-users --tenant Fabrikam >/dev/null
ok "profile pin-recovery assigned to pin-recovery-users"

say "The device syncs: the setting is accepted and waits for a reboot, on both sides"
agent sync
agent status --user "$USER" | sed -n '/Policy/,$p'
expect_eq "device CanReset" "$(container_field can_reset)" "DestructiveOnly"
pending="$(agent status --json | jq -r '[.policy.pending_reboot[].setting] | unique | join(",")')"
expect_eq "pending reboot on the device" "$pending" "PassportForWork/EnablePinRecovery"
agent sync >/dev/null  # delivers the changed report
expect_eq "server status of EnablePinRecovery" "$(server_setting_status EnablePinRecovery)" "PendingReboot"

say "Reboot step, then $USER signs in with the PIN: the PIN reset protector is created"
agent reboot
printf '%s\n' "$PIN2" | agent signin --user "$USER"
expect_eq "protector present" "$(container_field protector_present)" "true"
expect_eq "device CanReset" "$(container_field can_reset)" "DestructiveAndNonDestructive"
agent sync
expect_eq "server sees CanReset" "$(server_can_reset)" "DestructiveAndNonDestructive"
expect_eq "server status of EnablePinRecovery" "$(server_setting_status EnablePinRecovery)" "Succeeded"

say "$USER forgets the PIN again: non-destructive reset keeps keys and certificate"
thumb3="$(container_field thumbprint)"; from3="$(container_field not_before)"
wait_for_fresh_step
printf '%s\n%s\n%s\n' "$PASSWORD" "$(totp_next)" "$PIN3" | agent pin reset --user "$USER"
expect_eq "certificate thumbprint" "$(container_field thumbprint)" "$thumb3"
expect_eq "certificate NotBefore" "$(container_field not_before)" "$from3"
expect_eq "last reset" "$(container_field last_reset.kind)" "non-destructive"
printf '%s\n' "$PIN3" | agent signin --user "$USER" >/dev/null
ok "$USER signs in with the new PIN"

say "Federated sign-in at the lock screen: web sign-in blocks the IdP until it is allowed"
if agent web-signin "$IDP_URL" 2>"$work/web.err"; then fail "web sign-in opened $IDP_URL"; fi
expect_eq "web sign-in says" "$(tail -n 1 "$work/web.err" | sed 's/^dmagent: //')" \
  "We can't open that page right now"
srv profile add web-signin --tenant Fabrikam --format chr \
  --setting "./Vendor/MSFT/Policy/Config/Authentication/ConfigureWebSignInAllowedUrls=https://$IDP_HOST:$port" >/dev/null
srv assign web-signin all-devices --tenant Fabrikam >/dev/null
agent sync
agent web-signin "$IDP_URL"
ok "the IdP page opens after the ConfigureWebSignInAllowedUrls profile"
agent sync >/dev/null

say "What the admin sees, also through the admin API with a read-only token"
srv report
# The token goes to a new 0600 file only; curl reads the header from a file, so the token is
# never on a command line.
srv admin-token create --scope read-only --name auditor --token-file "$work/auditor-token" >/dev/null
(umask 077; printf 'Authorization: Bearer %s\n' "$(cat "$work/auditor-token")" >"$work/auditor-header")
admin_api() {  # port, method, op: prints the HTTP status, the body goes to $work/api.json
  curl -sS -o "$work/api.json" -w '%{http_code}' --cacert "$work/server/ca.pem" \
    -H @"$work/auditor-header" -X "$2" "https://127.0.0.1:$1/admin/v1/$3"
}
expect_eq "GET /admin/v1/report" "$(admin_api "$admin_port" GET report)" "200"
expect_eq "devices in it" "$(jq -r '[.devices[].device] | join(",")' "$work/api.json")" "$dev_id"
expect_eq "a write with the read-only token" "$(admin_api "$admin_port" POST tenant.add)" "403"
expect_eq "the admin API on the device port" "$(admin_api "$port" GET report)" "404"
echo
printf '%sdemo passed: %d steps%s\n' "$green" "$step" "$reset"
