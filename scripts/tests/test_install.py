"""Tests of scripts/install.sh on system images in temporary directories (--root, so the
machine's own /sbin/ipvsadm and dpkg diversions are never touched): rvsadm installed as the
ipvsadm Debian's ldirectord runs, with a dpkg diversion, and undone."""

import os
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INSTALL = os.path.join(ROOT, "scripts", "install.sh")


@unittest.skipUnless(shutil.which("dpkg-divert"), "needs dpkg-divert (Debian)")
class InstallAsIpvsadm(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.img = os.path.join(self.tmp, "img")
        self.build = os.path.join(self.tmp, "release")
        os.makedirs(self.build)
        for b in ("rvs", "rvsadm"):
            self.script(os.path.join(self.build, b), b)
        os.makedirs(os.path.join(self.img, "var/lib/dpkg"))
        os.makedirs(os.path.join(self.img, "usr/sbin"))

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def script(self, path, name):
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho %s\n" % name)
        os.chmod(path, 0o755)

    def image(self, merged):
        if merged:  # Debian bookworm: /sbin -> usr/sbin, the package's file is /sbin/ipvsadm
            os.symlink("usr/sbin", os.path.join(self.img, "sbin"))
        else:
            os.makedirs(os.path.join(self.img, "sbin"))
        self.script(os.path.join(self.img, "sbin/ipvsadm"), "ipvsadm")

    def install(self, *args):
        r = subprocess.run(["bash", INSTALL, "--root", self.img, "--from", self.build, *args],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def run_in_image(self, path):
        """What the image's `path` runs: the output of the script it resolves to in the image."""
        p = os.path.join(self.img, path.lstrip("/"))
        while os.path.islink(p):
            t = os.readlink(p)
            p = os.path.join(self.img, t.lstrip("/")) if t.startswith("/") else \
                os.path.join(os.path.dirname(p), t)
        return subprocess.run([p], capture_output=True, text=True).stdout.strip()

    def diversions(self):
        return subprocess.run(["dpkg-divert", "--root", self.img, "--list"],
                              capture_output=True, text=True).stdout

    def check_round_trip(self, merged):
        self.image(merged)
        self.install("--as-ipvsadm")
        self.assertEqual(self.run_in_image("/usr/local/bin/rvsadm"), "rvsadm")
        # ldirectord runs /sbin/ipvsadm, or /usr/sbin/ipvsadm: both are rvsadm now.
        self.assertEqual(self.run_in_image("/sbin/ipvsadm"), "rvsadm")
        self.assertEqual(self.run_in_image("/usr/sbin/ipvsadm"), "rvsadm")
        self.assertEqual(os.readlink(os.path.join(self.img, "sbin/ipvsadm")),
                         "/usr/local/bin/rvsadm")
        # The package's binary is kept, where dpkg will put its upgrades.
        self.assertEqual(self.run_in_image("/sbin/ipvsadm.ipvsadm"), "ipvsadm")
        d = self.diversions()
        self.assertIn("local diversion of /sbin/ipvsadm to /sbin/ipvsadm.ipvsadm", d)
        self.assertIn("local diversion of /usr/sbin/ipvsadm to /usr/sbin/ipvsadm.ipvsadm", d)
        # Idempotent.
        self.install("--as-ipvsadm")
        self.assertEqual(self.run_in_image("/sbin/ipvsadm"), "rvsadm")
        self.assertEqual(self.run_in_image("/sbin/ipvsadm.ipvsadm"), "ipvsadm")
        # And undone: the package's ipvsadm back in place, no diversion left.
        self.install("--no-ipvsadm")
        self.assertEqual(self.run_in_image("/sbin/ipvsadm"), "ipvsadm")
        self.assertFalse(os.path.lexists(os.path.join(self.img, "sbin/ipvsadm.ipvsadm")))
        self.assertNotIn("ipvsadm", self.diversions())
        self.assertEqual(self.run_in_image("/usr/local/bin/rvsadm"), "rvsadm")
        self.install("--uninstall")
        self.assertFalse(os.path.exists(os.path.join(self.img, "usr/local/bin/rvsadm")))
        self.assertEqual(self.run_in_image("/sbin/ipvsadm"), "ipvsadm")

    def test_merged_usr(self):
        self.check_round_trip(merged=True)

    def test_separate_sbin(self):
        self.check_round_trip(merged=False)

    def test_refuses_a_package_diversion(self):
        self.image(merged=True)
        subprocess.run(["dpkg-divert", "--root", self.img, "--package", "other", "--divert",
                        "/sbin/ipvsadm.other", "--add", "/sbin/ipvsadm"], check=True,
                       capture_output=True)
        r = subprocess.run(["bash", INSTALL, "--root", self.img, "--from", self.build,
                            "--as-ipvsadm"], capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("already diverted by the package other", r.stderr)
        self.assertEqual(self.run_in_image("/sbin/ipvsadm"), "ipvsadm")


if __name__ == "__main__":
    unittest.main()
