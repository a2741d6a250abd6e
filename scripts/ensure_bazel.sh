# Sourced by scripts/test.sh: installs Debian's bazel-bootstrap (Bazel 4.2, works offline with
# this workspace) and bazel-rules-java when Bazel or the rules are missing.
if ! command -v bazel >/dev/null 2>&1 || [ ! -d /usr/share/bazel/rules/java ]; then
  echo "== installing bazel-bootstrap and bazel-rules-java (Debian)"
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q bazel-bootstrap bazel-rules-java
fi
