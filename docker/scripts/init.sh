#!/bin/sh
# One-shot service of docker/docker-compose.yml: writes the homes of the
# validators into /net once (keys, configs with the peers' addresses, the
# genesis of a `dao` context among all of them). A restart keeps them.
set -eu
if [ -f /net/context ]; then
    echo "homes exist: context $(cat /net/context)"
    exit 0
fi
conclave testnet --validators "${VALIDATORS:-4}" --out /net --hosts "$HOSTS" \
    --app "${APP:-dao}" --checkpoint-interval "${CHECKPOINT_INTERVAL:-100}" > /net/testnet.txt
cat /net/testnet.txt
while read -r kind value _; do
    if [ "$kind" = context ]; then
        printf '%s\n' "$value" > /net/context.tmp
        mv /net/context.tmp /net/context
    fi
done < /net/testnet.txt
test -s /net/context
