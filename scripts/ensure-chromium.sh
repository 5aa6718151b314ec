#!/usr/bin/env bash
# Make sure the browser the real-browser tests drive is installed: Debian's `chromium`
# (Playwright is pointed at it; `playwright install` downloads browsers, which we never
# do) and `fonts-noto-color-emoji`, so emoji in screenshots are not empty boxes.
#
#   scripts/ensure-chromium.sh          silent, and instant, when both are installed
#   scripts/ensure-chromium.sh --print  also print the path of the chromium binary
#
# Looks for $CHROMIUM, then /usr/bin/chromium. When it or the emoji font is missing and
# we run as root with apt-get, installs the Debian packages without recommends.
# Otherwise it stops and says what to install.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_print_flag "$@"

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
EMOJI_FONT=/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf

missing=()
[[ -x "$CHROMIUM" ]] || missing+=(chromium)
[[ -f "$EMOJI_FONT" ]] || missing+=(fonts-noto-color-emoji)

if [[ "${#missing[@]}" -gt 0 ]]; then
    if ! is_root || ! have apt-get; then
        die "the browser tests need ${missing[*]}: install with '$(install_hint "${missing[@]}")' \
(Debian/Ubuntu), or point CHROMIUM at a Chromium binary"
    fi
    apt_install "${missing[@]}"
    [[ -x "$CHROMIUM" ]] || die "the chromium package is installed but $CHROMIUM is not there"
    say "$("$CHROMIUM" --version 2>/dev/null || echo chromium) at $CHROMIUM"
fi
[[ "$PRINT" -eq 1 ]] && printf '%s\n' "$CHROMIUM"
exit 0
