# Debian 12 packages mqgate needs to build, run its demo and run its tests
# (libwebsockets-evlib-uv: the plugin libwebsockets loads at run time for
# mqgated's epoll loop, gateway/evloop.c; prometheus for its promtool,
# which checks /metrics; gcc-multilib for the 32-bit compile check,
# tests/build/ilp32.sh; chromium and firefox-esr for the dashboard's
# browser tests; rabbitmq-server for the broker matrix,
# tests/integration/test_brokers.py, which runs a private node of it with
# its MQTT plugin; that script's aedes comes from the npm registry,
# tests/brokers/package-lock.json, installed by npm ci as the browser
# tests' packages are: npm reaches only that registry).
# Sourced by demo.sh and test.sh.
MQG_BUILD_DEPS="build-essential autoconf automake libtool pkg-config \
libwebsockets-dev libuv1-dev libpaho-mqtt-dev libjansson-dev check libjwt-dev \
liboath-dev libcrypt-dev libsystemd-dev libssl-dev libcurl4-openssl-dev"
MQG_RUN_DEPS="libwebsockets-evlib-uv mosquitto mosquitto-clients python3 \
python3-paho-mqtt openssl python3-cryptography"
MQG_TEST_DEPS="valgrind curl chromium firefox-esr nginx haproxy prometheus \
clang-14 libclang-rt-14-dev gcc-multilib rabbitmq-server"
# node 20 or later runs the client and browser tests; Debian's nodejs is
# installed only where no node is on the machine.
command -v node >/dev/null 2>&1 || MQG_TEST_DEPS="$MQG_TEST_DEPS nodejs npm"
# scripts/package-test.sh: builds, lints, installs and runs the .deb
# (systemd for systemd-analyze and systemd-sysusers, not as PID 1).
MQG_PACKAGE_DEPS="dpkg-dev debhelper lintian man-db systemd strace procps"

mqg_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "run as root (it installs Debian packages with apt-get)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends "$@"
}

# Builds into the source tree with the given configure flags, once per set
# of flags.
mqg_build() {
    if [ ! -x configure ] || [ configure.ac -nt configure ] ||
       [ Makefile.am -nt configure ]; then
        autoreconf -fi
    fi
    if [ ! -f Makefile ] || [ "$(cat .mqg-configured 2>/dev/null)" != "$*" ]; then
        ./configure "$@"
        echo "$*" > .mqg-configured
    fi
    make -j"$(nproc)"
}
