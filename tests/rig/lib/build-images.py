#!/usr/bin/env python3
"""Builds the rig's container images as one OCI image-layout tarball.

    build-images.py BUSYBOX OUT.tar [--nvidia-plugin DIR VERSION]
    build-images.py --plugin-rootfs BUSYBOX DIR VERSION OUTDIR   (the plugin image's files, unpacked)
    build-images.py --nfd DIR VERSION OUT.tar                    (Node Feature Discovery's image alone)

Both images share one uncompressed layer: a rootfs made of Debian's static
busybox (busybox-static) and its applet symlinks. Nothing is pulled from a
registry; the names are local ones that no registry serves:

    localhost/gpuctl-rig/busybox:1   Cmd ["sh"]               test containers
    localhost/gpuctl-rig/pause:1     Entrypoint ["/bin/sleep", "2147483647"]
                                                              CRI sandbox image
    nvcr.io/nvidia/cuda:12.8.1-base-ubuntu24.04  (see CUDA_BASE_IMAGE below)
    nvcr.io/nvidia/k8s/dcgm-exporter:<pinned>    (see dcgm_exporter_image below)

With --nvidia-plugin, a third image under the real name the device plugin's
manifests use, nvcr.io/nvidia/k8s-device-plugin:VERSION (one image for the
plugin and gpu-feature-discovery, as published; DIR from
lib/build-nvidia-plugin): the busybox layer plus one with the binaries the
build made (/usr/bin/{nvidia-device-plugin,gpu-feature-discovery,config-manager,
mps-control-daemon}), the host's glibc (libc, libm, libdl, libpthread, librt,
the loader, /etc/ld.so.conf and a real ld.so.cache, as a distribution image
has them), and the published image's environment (NVIDIA_VISIBLE_DEVICES=all,
NVIDIA_DRIVER_CAPABILITIES=compute,utility, NVIDIA_DISABLE_REQUIRE=true,
LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64 from the CUDA
base image, Entrypoint nvidia-device-plugin). As in the published image there is no
libnvidia-ml.so.1: the nvidia runtime mounts the node's (the stand-in) into
containers that ask for GPUs, as the real toolkit mounts the driver's.

With --nfd, a tarball of one image, registry.k8s.io/nfd/node-feature-discovery:VERSION
(DIR from lib/build-nfd), as the Dockerfile's minimal target (the published
tag) makes it: FROM scratch, the binaries in /usr/bin (static), nfd-worker.conf
in /etc/kubernetes/node-feature-discovery, USER 65534:65534,
GRPC_GO_LOG_SEVERITY_LEVEL=INFO.

The tarball is deterministic (fixed mtimes and owners) and `ctr images import`
names the images from the io.containerd.image.name annotation.
"""
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

BUSYBOX_IMAGE = "localhost/gpuctl-rig/busybox:1"
PAUSE_IMAGE = "localhost/gpuctl-rig/pause:1"


PLUGIN_IMAGE = "nvcr.io/nvidia/k8s-device-plugin:"
# Node Feature Discovery under the name its kustomize and Helm deployments use
NFD_IMAGE = "registry.k8s.io/nfd/node-feature-discovery:"
# The image gpuctl smoke-test runs by default (templates/versions.yaml.tmpl),
# under its real name: the busybox layer plus the host's glibc (for
# gpuctl-gpuload) and the CUDA base image's environment. As in the real one
# there is no driver library in it: the nvidia runtime mounts nvidia-smi,
# libnvidia-ml.so.1 and libcuda.so.1 (the node's stand-ins) into GPU pods.
CUDA_BASE_IMAGE = "nvcr.io/nvidia/cuda:12.8.1-base-ubuntu24.04"
# The DCGM exporter under the name templates/versions.yaml.tmpl pins (read
# from there, so the rig follows the pin): the busybox layer plus the rig's
# stand-in (standins/dcgm-exporter: the real one needs DCGM and a GPU).
HERE = os.path.dirname(os.path.abspath(__file__))
VERSIONS = os.path.join(HERE, "..", "..", "..", "templates", "versions.yaml.tmpl")
DCGM_STANDIN = os.path.join(HERE, "..", "standins", "dcgm-exporter")


def dcgm_exporter_image():
    block = None
    with open(VERSIONS) as f:
        for line in f:
            if not line.startswith(" "):
                block = line.split(":", 1)[0].strip()
            elif block == "dcgmExporter" and line.strip().startswith("image:"):
                return line.split(":", 1)[1].strip()
    raise SystemExit(f"build-images.py: no dcgmExporter image in {VERSIONS}")


def dcgm_layer_tar():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        with open(DCGM_STANDIN, "rb") as f:
            data = f.read()
        tf.addfile(tinfo("usr/bin/dcgm-exporter", size=len(data), mode=0o755), io.BytesIO(data))
    return buf.getvalue()


def dcgm_config():
    return {"Env": ["PATH=/usr/local/nvidia/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=compute,utility,compat32",
                    "DCGM_EXPORTER_LISTEN=:9400"],
            "Entrypoint": ["/usr/bin/dcgm-exporter"],
            "Labels": {"summary": "stand-in for NVIDIA's dcgm-exporter (busybox; built by gpuctl tests/rig)"}}


PLUGIN_CMDS = ["nvidia-device-plugin", "gpu-feature-discovery", "config-manager", "mps-control-daemon"]
# glibc as a distribution image ships it: the C library, the libraries that
# programs built against an older glibc still name (the NVIDIA driver's
# nvidia-smi and libcuda.so.1 need libm, libdl, libpthread and librt), the
# loader, and /etc/ld.so.conf with a real /etc/ld.so.cache. On a real GPU host
# the NVIDIA container toolkit's update-ldcache hook rebuilds that cache with
# the driver's folder added, and only when the image has one.
GLIBC = ["/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libm.so.6", "/lib/x86_64-linux-gnu/libdl.so.2",
         "/lib/x86_64-linux-gnu/libpthread.so.0", "/lib/x86_64-linux-gnu/librt.so.1", "/lib64/ld-linux-x86-64.so.2"]
LD_SO_CONF = b"include /etc/ld.so.conf.d/*.conf\n"
LD_SO_CONF_D = b"/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n"


def tinfo(name, **kw):
    ti = tarfile.TarInfo(name)
    ti.mtime = 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def glibc_files():
    """(source, path in the image, mode) for glibc, its loader and its ld.so.cache."""
    files = [(os.path.realpath(g), g.lstrip("/"), 0o755) for g in GLIBC]
    with tempfile.TemporaryDirectory() as root:
        for src, dst, _ in files:
            os.makedirs(os.path.join(root, os.path.dirname(dst)), exist_ok=True)
            shutil.copyfile(src, os.path.join(root, dst))
        os.makedirs(os.path.join(root, "etc/ld.so.conf.d"))
        with open(os.path.join(root, "etc/ld.so.conf"), "wb") as f:
            f.write(LD_SO_CONF)
        with open(os.path.join(root, "etc/ld.so.conf.d/x86_64-linux-gnu.conf"), "wb") as f:
            f.write(LD_SO_CONF_D)
        ldconfig = "/sbin/ldconfig" if os.path.exists("/sbin/ldconfig") else "ldconfig"
        subprocess.run([ldconfig, "-r", root, "-X"], check=True)
        with open(os.path.join(root, "etc/ld.so.cache"), "rb") as f:
            cache = f.read()
    return files, cache


def add_glibc(tf):
    for d in ("etc", "etc/ld.so.conf.d"):
        tf.addfile(tinfo(d, type=tarfile.DIRTYPE, mode=0o755))
    files, cache = glibc_files()
    for src, dst, mode in files:
        with open(src, "rb") as f:
            data = f.read()
        tf.addfile(tinfo(dst, size=len(data), mode=mode), io.BytesIO(data))
    for name, data in (("etc/ld.so.conf", LD_SO_CONF), ("etc/ld.so.conf.d/x86_64-linux-gnu.conf", LD_SO_CONF_D),
                       ("etc/ld.so.cache", cache)):
        tf.addfile(tinfo(name, size=len(data), mode=0o644), io.BytesIO(data))


def plugin_layer_tar(plugin_dir):
    """The plugin binaries and the glibc they need (real files, links resolved)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("lib", "lib/x86_64-linux-gnu", "lib64", "usr/lib", "usr/lib/x86_64-linux-gnu",
                  "var", "var/lib", "var/lib/kubelet", "var/lib/kubelet/device-plugins",
                  "etc/kubernetes", "etc/kubernetes/node-feature-discovery",
                  "etc/kubernetes/node-feature-discovery/features.d", "licenses"):
            tf.addfile(tinfo(d, type=tarfile.DIRTYPE, mode=0o755))
        add_glibc(tf)
        files = []
        for c in PLUGIN_CMDS:
            src = os.path.join(plugin_dir, "bin", c)
            if os.path.exists(src):  # a command the proxy could not build is left out
                files.append((src, "usr/bin/" + c, 0o755))
        for src, dst, mode in files:
            with open(src, "rb") as f:
                data = f.read()
            tf.addfile(tinfo(dst, size=len(data), mode=mode), io.BytesIO(data))
    return buf.getvalue()


def glibc_layer_tar():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("lib", "lib/x86_64-linux-gnu", "lib64", "usr/local", "usr/local/nvidia"):
            tf.addfile(tinfo(d, type=tarfile.DIRTYPE, mode=0o755))
        add_glibc(tf)
    return buf.getvalue()


def cuda_base_config():
    return {"Env": ["PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "CUDA_VERSION=12.8.1", "NVIDIA_REQUIRE_CUDA=cuda>=12.8",
                    "LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
                    "NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"],
            "Cmd": ["sh"],
            "Labels": {"summary": "stand-in for the CUDA base image (busybox and glibc; built by gpuctl tests/rig)"}}


def plugin_config(version, layers):
    path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return {"Env": [path, "NVIDIA_DISABLE_REQUIRE=true", "NVIDIA_VISIBLE_DEVICES=all",
                    "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
                    "LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64"],
            "Entrypoint": ["nvidia-device-plugin"],
            "Labels": {"name": "NVIDIA Device Plugin", "vendor": "NVIDIA", "version": version,
                       "summary": "NVIDIA device plugin for Kubernetes (built by gpuctl tests/rig)"}}


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


def nfd_layer_tar(nfd_dir):
    """What the NFD image's minimal variant holds (FROM scratch): the commands in
    /usr/bin and nfd-worker.conf in /etc/kubernetes/node-feature-discovery."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("etc", "etc/kubernetes", "etc/kubernetes/node-feature-discovery", "usr", "usr/bin"):
            tf.addfile(tinfo(d, type=tarfile.DIRTYPE, mode=0o755))
        with open(os.path.join(nfd_dir, "nfd-worker.conf"), "rb") as f:
            data = f.read()
        tf.addfile(tinfo("etc/kubernetes/node-feature-discovery/nfd-worker.conf", size=len(data), mode=0o644),
                   io.BytesIO(data))
        for c in sorted(os.listdir(os.path.join(nfd_dir, "bin"))):
            with open(os.path.join(nfd_dir, "bin", c), "rb") as f:
                data = f.read()
            tf.addfile(tinfo("usr/bin/" + c, size=len(data), mode=0o755), io.BytesIO(data))
    return buf.getvalue()


def nfd_config(version):
    """The published image's config: USER 65534:65534, the gRPC log level, no
    entrypoint (the manifests name the command)."""
    return {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "GRPC_GO_LOG_SEVERITY_LEVEL=INFO"],
            "User": "65534:65534",
            "Labels": {"summary": "Node Feature Discovery " + version + " (built by gpuctl tests/rig)"}}


def write_layout(out, images, blobs):
    """images: (name, config, layer descriptors, history lines) -> an OCI image-layout tarball."""
    manifests = []
    for name, cfg, layers, history in images:
        config = {"architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
                  "config": cfg,
                  "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]},
                  "history": [{"created": "1970-01-01T00:00:00Z", "created_by": h} for h in history]}
        cdesc = blob(blobs, jbytes(config))
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": dict(mediaType="application/vnd.oci.image.config.v1+json", **cdesc),
                    "layers": [dict(mediaType="application/vnd.oci.image.layer.v1.tar", **l) for l in layers]}
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


def main():
    if sys.argv[1] == "--plugin-rootfs":
        busybox, plugin_dir, version, outdir = sys.argv[2:6]
        for layer in (layer_tar(busybox), plugin_layer_tar(plugin_dir)):
            with tarfile.open(fileobj=io.BytesIO(layer)) as tf:
                tf.extractall(outdir, filter="tar")
        return
    if sys.argv[1] == "--nfd":
        nfd_dir, version, out = sys.argv[2:5]
        blobs = {}
        images = [(NFD_IMAGE + version, nfd_config(version), [blob(blobs, nfd_layer_tar(nfd_dir))],
                   ["gpuctl tests/rig: Node Feature Discovery binaries and nfd-worker.conf"])]
        write_layout(out, images, blobs)
        return
    busybox, out = sys.argv[1], sys.argv[2]
    blobs = {}
    layer = layer_tar(busybox)
    ldesc = blob(blobs, layer)
    path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    images = [(BUSYBOX_IMAGE, {"Env": [path], "Cmd": ["sh"]}, [ldesc]),
              (PAUSE_IMAGE, {"Env": [path], "Entrypoint": ["/bin/sleep", "2147483647"]}, [ldesc]),
              (CUDA_BASE_IMAGE, cuda_base_config(), [ldesc, blob(blobs, glibc_layer_tar())]),
              (dcgm_exporter_image(), dcgm_config(), [ldesc, blob(blobs, dcgm_layer_tar())])]
    if len(sys.argv) > 3 and sys.argv[3] == "--nvidia-plugin":
        plugin_dir, version = sys.argv[4], sys.argv[5]
        pdesc = blob(blobs, plugin_layer_tar(plugin_dir))
        images.append((PLUGIN_IMAGE + version, plugin_config(version, 2), [ldesc, pdesc]))
    busybox_line = "gpuctl tests/rig: Debian busybox-static rootfs"
    write_layout(out, [(name, cfg, layers,
                        [busybox_line] + [second_layer(name)] * (len(layers) - 1)) for name, cfg, layers in images],
                 blobs)


def second_layer(name):
    if name.startswith(PLUGIN_IMAGE):
        return "gpuctl tests/rig: glibc and the NVIDIA device plugin binaries"
    if "dcgm-exporter" in name:
        return "gpuctl tests/rig: the dcgm-exporter stand-in (tests/rig/standins/dcgm-exporter)"
    return "gpuctl tests/rig: glibc"


if __name__ == "__main__":
    main()
