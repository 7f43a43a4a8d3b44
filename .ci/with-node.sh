#!/bin/sh
# Runs a command on Node.js 24 LTS: `sh .ci/with-node.sh node dist/src/main.js`.
#
# `npm start`, `npm test` and `npm run bench` go through this, so that the README's two commands give
# Node 24 on any machine that has some Node and npm: when `node --version` already says v24 the command
# runs as it is; otherwise .ci/node.sh fetches Node's own build from the npm registry once (into a cache
# folder outside the repository) and the command runs with it first on PATH. If that cannot be done (no
# registry, an unsupported platform) the command still runs, on the Node at hand, after a warning.
node_bin=$(sh "$(dirname "$0")/node.sh") || node_bin=
if [ -n "$node_bin" ]; then
  PATH="${node_bin}:${PATH}"
  export PATH
else
  echo "warning: running on Node $(node --version 2>/dev/null || echo '(none)'), not Node 24 LTS" >&2
fi
exec "$@"
