#!/bin/sh
# docker-init.sh: the "asterisk-init" one-shot service of docker-compose.yml.
#
# Prepares the volumes Asterisk starts from, before Asterisk starts (and again whenever you run
# `docker compose run --rm asterisk-init`):
#   1. copies the hand-written config of asterisk-dev/ into the asterisk-config volume
#      (/etc/asterisk), replacing the previous copy: asterisk-dev/ is the source of truth;
#   2. copies the placeholders asterisk-dev/*_switchboard.conf only where the file is missing:
#      once switchboard has rendered, those files are switchboard's and are never overwritten;
#   3. makes a self-signed certificate /etc/asterisk/keys/asterisk.{crt,key} if there is none
#      (the sample store's tls and wss transports, and http.conf's TLS, point at it);
#   4. installs English prompts into the asterisk-sounds volume if there are none (the Debian
#      Asterisk images have none, and app_voicemail cannot take a message without them).
# It runs in the node:20-bookworm image (root, Debian: cp, openssl, apt-get), the same image as
# the switchboard service, so it does not depend on what the Asterisk image contains.
#
# Settings (environment): ASTERISK_IP (added to the certificate), ASTERISK_SOUNDS=none (skip 4),
# ASTERISK_OWNER (uid:gid of Asterisk in its image, default 1000:1000); INIT_SOURCE_DIR,
# INIT_ETC_DIR, INIT_SOUNDS_DIR move the three directories (for trying the script outside Docker).
set -eu

src=${INIT_SOURCE_DIR:-/asterisk-dev}
etc=${INIT_ETC_DIR:-/etc/asterisk}
sounds=${INIT_SOUNDS_DIR:-/var/lib/asterisk/sounds}
owner=${ASTERISK_OWNER:-1000:1000}

log() { printf 'asterisk-init: %s\n' "$*"; }

mkdir -p "$etc"

# 1 + 2. Configuration files.
for f in "$src"/*.conf "$src"/voicemail-sendmail.sh; do
  [ -f "$f" ] || continue
  name=${f##*/}
  case $name in
    *_switchboard.conf)
      if [ -e "$etc/$name" ]; then
        log "keeping the existing $name"
      else
        cp "$f" "$etc/$name"
        log "placeholder $name"
      fi
      ;;
    *)
      # Copy then rename, so that a running Asterisk never reads a half-written file.
      cp "$f" "$etc/.$name.tmp"
      mv -f "$etc/.$name.tmp" "$etc/$name"
      ;;
  esac
done
log "configuration copied from asterisk-dev/ to $etc"

# 3. TLS certificate.
keys=$etc/keys
if [ -s "$keys/asterisk.crt" ] && [ -s "$keys/asterisk.key" ]; then
  log "keeping the certificate in $keys"
else
  mkdir -p "$keys"
  san="DNS:asterisk,DNS:localhost,IP:127.0.0.1"
  if [ -n "${ASTERISK_IP:-}" ]; then
    san="$san,IP:$ASTERISK_IP"
  fi
  openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=asterisk" \
    -addext "subjectAltName=$san" \
    -keyout "$keys/asterisk.key" -out "$keys/asterisk.crt" 2>/dev/null
  log "made a self-signed certificate for $san in $keys"
fi
chmod 600 "$keys/asterisk.key"
chmod 644 "$keys/asterisk.crt"

# Asterisk runs as this uid:gid in its image and must read the key.
chown -R "$owner" "$etc"

# 4. Prompts (beep, vm-intro, vm-theperson, digits, ...): Debian's asterisk-core-sounds-en-gsm.
if [ -s "$sounds/en/beep.gsm" ]; then
  log "keeping the prompts in $sounds/en"
elif [ "${ASTERISK_SOUNDS:-install}" = none ]; then
  log "ASTERISK_SOUNDS=none: no prompts installed; VoiceMail() will fail until there are some"
else
  log "installing English prompts (Debian package asterisk-core-sounds-en-gsm)"
  if apt-get update -qq >/dev/null && \
     apt-get install -y -qq --no-install-recommends asterisk-core-sounds-en-gsm >/dev/null; then
    mkdir -p "$sounds/en"
    cp -R /usr/share/asterisk/sounds/en_US_f_Allison/. "$sounds/en/"
    log "prompts installed in $sounds/en"
  else
    log "WARNING: could not install the prompts (no network?). Asterisk starts anyway, but"
    log "WARNING: VoiceMail() fails without them. Retry: docker compose run --rm asterisk-init"
  fi
fi
