#!/bin/sh
# One-shot service of docker/docker-compose.yml: deploys the context's
# ConclaveProxy on the chain, funds it, anchors the context to it (a context
# tx every member executes) and writes the relayer's relay.toml. Once: a
# restart finds /net/relay.toml and does nothing.
set -eu
if [ -f /net/relay.toml ]; then
    echo "anchored already:"
    cat /net/relay.toml
    exit 0
fi
ctx=$(cat /net/context)
umask 077
printf '%s\n' "$DEPLOYER_KEY" > /net/deployer.key
printf '%s\n' "$RELAYER_KEY" > /net/relayer.key
# The chain may still be starting: a bounded number of tries.
tries=0
until proxy=$(conclave --home /net/node0 anchor deploy --context "$ctx" --chain evm \
    --rpc "$CHAIN_RPC" --chain-id "$CHAIN_ID" --key-file /net/deployer.key \
    --fund-wei "${FUND_WEI:-0}"); do
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ]; then
        echo "anchor deploy failed $tries times; giving up" >&2
        exit 1
    fi
    sleep 2
done
cat > /net/relay.toml.tmp <<TOML
metrics_listen = "0.0.0.0:9464"

[[relay]]
context = "$ctx"
chain = "evm"
proxy = "$proxy"
rpc = "$CHAIN_RPC"
key_file = "relayer.key"
chain_id = $CHAIN_ID
TOML
mv /net/relay.toml.tmp /net/relay.toml
echo "proxy $proxy"
