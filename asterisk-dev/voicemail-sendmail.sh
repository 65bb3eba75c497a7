#!/bin/sh
# voicemail-sendmail.sh: app_voicemail's "mailcmd" in switchboard's development stack.
#
# app_voicemail writes a complete message (headers, text, the recording as a MIME attachment)
# and runs `mailcmd < message`, expecting what `sendmail -t` does: take the recipients from the
# To: header and deliver. The Asterisk images of docker-compose.yml have no sendmail but do
# have curl, which speaks SMTP, so this script:
#   1. reads the message from standard input;
#   2. takes the envelope sender from From: and the recipients from To: and Cc:
#      (folded header lines are joined first: app_voicemail folds MIME-encoded names);
#   3. sends it with curl to $VOICEMAIL_SMTP_URL (default smtp://mailpit:1025).
# It is POSIX sh and uses only awk, grep, tr, mktemp and curl (Debian and Alpine both have them).
# Errors go to standard error, which is Asterisk's output: docker compose logs asterisk.
set -eu

smtp_url=${VOICEMAIL_SMTP_URL:-smtp://mailpit:1025}

fail() {
  printf 'voicemail-sendmail: %s\n' "$*" >&2
  exit 1
}

msg=$(mktemp) || fail "cannot create a temporary file"
trap 'rm -f "$msg"' EXIT
trap 'exit 1' HUP INT TERM
cat >"$msg"

# The header block, CRs removed and folded lines joined, one header per line.
headers() {
  tr -d '\r' <"$msg" | awk '
    /^$/ { exit }
    /^[ \t]/ { sub(/^[ \t]+/, " "); line = line $0; next }
    { if (line != "") print line; line = $0 }
    END { if (line != "") print line }
  '
}

# Every address in the named header(s): the <...> parts, or the bare addresses when the header
# has no angle brackets. One per line.
addresses() {
  value=$(headers | awk -v name="$1" '
    BEGIN { n = tolower(name) ":" }
    tolower(substr($0, 1, length(n))) == n { print substr($0, length(n) + 1) }
  ')
  case $value in
    *'<'*) printf '%s\n' "$value" | grep -o '<[^<>]*@[^<>]*>' | tr -d '<>' || true ;;
    *) printf '%s\n' "$value" | tr ', \t' '\n\n\n' | grep '@' || true ;;
  esac
}

from=$(addresses From | head -n 1)
[ -n "$from" ] || from=voicemail@example.com
rcpts="$(addresses To) $(addresses Cc)"

set -- --silent --show-error --crlf --url "$smtp_url" --mail-from "$from"
count=0
for r in $rcpts; do
  set -- "$@" --mail-rcpt "$r"
  count=$((count + 1))
done
[ "$count" -gt 0 ] || fail "no recipient in the To: or Cc: header; message not sent"

curl "$@" --upload-file "$msg" || fail "curl could not hand the message to $smtp_url"
