#!/bin/sh
# The program under test: a shell script that asks a weather API for a city.
# It reads the API's base URL from WEATHER_API (the real service in
# production, tserver in the test).
set -u
city="$1"
answer=$(curl -sS --max-time 5 -w '\n%{http_code}' \
    -H "Authorization: Bearer ${WEATHER_TOKEN:-none}" \
    "${WEATHER_API}/v1/forecast?city=${city}") || { echo "weather: no answer" >&2; exit 3; }
status=$(printf '%s\n' "$answer" | tail -n 1)
body=$(printf '%s\n' "$answer" | sed '$d')
case "$status" in
    200) echo "${city}: ${body}" ;;
    503) echo "weather: the service is down, try later" >&2; exit 2 ;;
    *)   echo "weather: unexpected HTTP ${status}" >&2; exit 1 ;;
esac
