#!/usr/bin/env python3
"""Builds the rig's two container images as one OCI image-layout tarball.

    build-images.py BUSYBOX OUT.tar

Both images share one uncompressed layer: a rootfs made of Debian's static
busybox (busybox-static) and its applet symlinks. Nothing is pulled from a
registry; the names are local ones that no registry serves:

    localhost/gpuctl-rig/busybox:1   Cmd ["sh"]               test containers
    localhost/gpuctl-rig/pause:1     Entrypoint ["/bin/sleep", "2147483647"]
                                                              CRI sandbox image

The tarball is deterministic (fixed mtimes and owners) and `ctr images import`
names the images from the io.containerd.image.name annotation.
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

BUSYBOX_IMAGE = "localhost/gpuctl-rig/busybox:1"
PAUSE_IMAGE = "localhost/gpuctl-rig/pause:1"


def layer_tar(busybox):
    applets = subprocess.run([busybox, "--list-full"], check=True, capture_output=True,
                             text=True).stdout.split()
    buf = io.BytesIO()
    dirs = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp",
            "root", "run", "var", "var/run"}
    for a in applets:
        d = os.path.dirname(a)
        while d:
            dirs.add(d)
            d = os.path.dirname(d)

    def info(name, **kw):
        ti = tarfile.TarInfo(name)
        ti.mtime = 0
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        for k, v in kw.items():
            setattr(ti, k, v)
        return ti

    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in sorted(dirs):
            mode = 0o1777 if d == "tmp" else 0o755
            tf.addfile(info(d, type=tarfile.DIRTYPE, mode=mode))
        with open(busybox, "rb") as f:
            data = f.read()
        tf.addfile(info("bin/busybox", size=len(data), mode=0o755), io.BytesIO(data))
        for a in sorted(set(applets)):
            if a in ("bin/busybox", "linuxrc") or not a:
                continue
            tf.addfile(info(a, type=tarfile.SYMTYPE, linkname="/bin/busybox", mode=0o777))
        for name, text in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
                           ("etc/group", "root:x:0:\n")):
            b = text.encode()
            tf.addfile(info(name, size=len(b), mode=0o644), io.BytesIO(b))
    return buf.getvalue()


def blob(blobs, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"digest": digest, "size": len(data)}


def jbytes(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def main():
    busybox, out = sys.argv[1], sys.argv[2]
    blobs = {}
    layer = layer_tar(busybox)
    ldesc = blob(blobs, layer)
    path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    manifests = []
    for name, cfg in ((BUSYBOX_IMAGE, {"Env": [path], "Cmd": ["sh"]}),
                      (PAUSE_IMAGE, {"Env": [path], "Entrypoint": ["/bin/sleep", "2147483647"]})):
        config = {"architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
                  "config": cfg,
                  "rootfs": {"type": "layers", "diff_ids": [ldesc["digest"]]},
                  "history": [{"created": "1970-01-01T00:00:00Z",
                               "created_by": "gpuctl tests/rig: Debian busybox-static rootfs"}]}
        cdesc = blob(blobs, jbytes(config))
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": dict(mediaType="application/vnd.oci.image.config.v1+json", **cdesc),
                    "layers": [dict(mediaType="application/vnd.oci.image.layer.v1.tar", **ldesc)]}
        mdesc = blob(blobs, jbytes(manifest))
        manifests.append(dict(mediaType="application/vnd.oci.image.manifest.v1+json",
                              platform={"architecture": "amd64", "os": "linux"},
                              annotations={"io.containerd.image.name": name,
                                           "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]},
                              **mdesc))
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": manifests}
    tmp = out + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tf:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode = len(data), 0, 0o644
            tf.addfile(ti, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", jbytes(index))
        for d in sorted(blobs):
            add("blobs/sha256/" + d.split(":", 1)[1], blobs[d])
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
