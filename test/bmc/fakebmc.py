"""Test peer: Debian python3-pyghmi's FakeBmc (pyghmi.cmd.fakebmc), not osp code.

Debian's /usr/bin/fakebmc hard-codes admin/password and binds '::', so this
wrapper only chooses the loopback address, port and credentials and keeps the
power state and boot device in files the tests can read. The password is read
from stdin so it never appears on a command line. It prints "listening" once
the socket is bound.

Usage: /usr/bin/python3 fakebmc.py STATE_DIR PORT USERNAME  (password on stdin)
"""
import os
import sys

import pyghmi.ipmi.bmc as bmc
from pyghmi.cmd.fakebmc import FakeBmc


class FileBackedBmc(FakeBmc):
    def __init__(self, statedir, authdata, port):
        # FakeBmc.__init__ binds '::'; bind loopback only.
        bmc.Bmc.__init__(self, authdata, port, address='127.0.0.1')
        self.statedir = statedir
        self.powerstate = 'off'
        self.bootdevice = 'default'
        self._save()

    def _save(self):
        for name, value in (('power', self.powerstate), ('boot', self.bootdevice)):
            tmp = os.path.join(self.statedir, 'st.%s.tmp' % name)
            with open(tmp, 'w') as f:
                f.write(value + '\n')
            os.replace(tmp, os.path.join(self.statedir, 'st.%s' % name))

    def set_boot_device(self, bootdevice):
        FakeBmc.set_boot_device(self, bootdevice)
        self._save()

    def power_off(self):
        FakeBmc.power_off(self)
        self._save()

    def power_on(self):
        FakeBmc.power_on(self)
        self._save()

    def power_shutdown(self):
        FakeBmc.power_shutdown(self)
        self._save()


def main():
    statedir, port, username = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    password = sys.stdin.readline().rstrip('\n')
    server = FileBackedBmc(statedir, {username: password}, port)
    print('listening', flush=True)
    server.listen()


if __name__ == '__main__':
    sys.exit(main())
