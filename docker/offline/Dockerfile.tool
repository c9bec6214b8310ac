# A tool image for machines without a registry (docker/test.sh): one binary
# from this machine (anvil from its npm package, prometheus from Debian's
# package) on the local Debian 12 base. With a registry, the compose file
# uses the tools' official images instead.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG TOOL
COPY ${TOOL} /usr/local/bin/${TOOL}
RUN ln -s "/usr/local/bin/${TOOL}" /usr/local/bin/tool \
    && groupadd --system --gid 10002 tool \
    && useradd --system --uid 10002 --gid tool --create-home tool \
    && install -d -o tool -g tool /prometheus
USER tool
ENTRYPOINT ["/usr/local/bin/tool"]
