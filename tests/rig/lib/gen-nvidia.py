#!/usr/bin/env python3
"""Derives a node's replay data for the nvidia-smi stand-in from the real
1-GPU H100 capture in tests/fixtures/nvidia-smi/h100-80gb-hbm3.

    gen-nvidia.py FIXTURES OUTDIR --node NAME --gpus N [--driver V --cuda V]
                  [--mode ok|broken] [--keep-uuid] [--mig LAYOUT]

OUTDIR receives (read by standins/nvidia-smi, a POSIX sh script that also
runs inside busybox containers):

  mode               ok | broken
  smi.txt            `nvidia-smi`
  L.txt              `nvidia-smi -L`
  q-head.txt q-gpu-I.txt          `nvidia-smi -q`   = head + every gpu
  x-head.xml x-gpu-I.xml x-tail.xml `nvidia-smi -q -x`
  gpus.tsv           one line per GPU: index uuid bus_id
  query-gpu.tsv      `--query-gpu` table: field, aliases, unit, value per GPU
  query-apps.tsv     `--query-compute-apps` field table
  apps.tsv           running compute processes (empty: none running)
  apps-busy.tsv      the captured process (used when the file `busy` exists)
  mig-lgip.txt  topo.txt  version.txt
  proc-driver/nvidia/version   (bound over /proc/driver on the node)
  proc-driver/nvidia-caps/mig-minors   the driver's MIG capability minors
  modules.txt        the nvidia lines /proc/modules would have
  mig.tsv            only with --mig: one line per MIG device (read by the
                     libnvidia-ml.so.1 stand-in, tests/rig/nvml, and -L):
                     gpu-index profile gi-id placement-start placement-size MIG-UUID
(--mode broken: nvidia-smi fails as without a loaded driver, and there is no
proc-driver/nvidia and no module.)

With --gpus 1, --keep-uuid and the captured driver every output is the
capture byte for byte. Larger GPU counts repeat the GPU with its own index,
UUID, serial, PCI bus id (DGX H100 bus numbers), minor number and module id.
--driver/--cuda rewrite the versions everywhere (the old-driver fault node).
--mig LAYOUT puts every GPU in MIG mode with that layout of GPU instances
(one compute instance each), from the profiles of the mig -lgip capture:
"all-1g.10gb" (as many as the profile allows) or a list such as
"3g.40gb,2g.20gb,1g.10gb"; MIG mode then reads Enabled in --query-gpu, -q
and -q -x. Without --mig nothing changes.

FIXTURES may also be a capture without -q -x, mig -lgip, topo -m or
compute-apps output (tests/fixtures/nvidia-smi/h200): the outputs made from
those are then not written, and --query-gpu fields it did not capture read
[N/A].
"""
import argparse
import hashlib
import os
import re

CAP_DRIVER = "580.159.04"
CAP_CUDA = "13.0"
CAP_UUID = "GPU-f3c1c444-0b96-889d-5c44-d5150de13261"
CAP_BUS = "00000000:00:06.0"
CAP_SERIAL = "1752624013516"
CAP_PDI = "0x310d84f83e6bb4cd"
DGX_BUSES = ["18", "2A", "3A", "5D", "9A", "AB", "BA", "DB"]


def read(fx, name):
    with open(os.path.join(fx, name), encoding="utf-8", newline="") as f:
        return f.read()


def read_opt(fx, name):
    return read(fx, name) if os.path.exists(os.path.join(fx, name)) else None


def q_fact(fx, key, default):
    """A value of the captured `nvidia-smi -q` (first occurrence of KEY)."""
    m = re.search(r"\n\s*" + re.escape(key) + r"\s+: (.*)", read(fx, "nvidia-smi-q.txt"))
    return m.group(1) if m else default


def write(out, name, text):
    path = os.path.join(out, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


class GPU:
    def __init__(self, node, i, n, keep_uuid, cap=(CAP_UUID, CAP_SERIAL, CAP_PDI)):
        h = hashlib.md5(f"{node}/{i}".encode()).hexdigest()
        self.index = i
        if n == 1:
            self.bus_hex, self.dev_hex = "00", "06"
        else:
            self.bus_hex, self.dev_hex = DGX_BUSES[i % 8], "00"
            if i >= 8:
                self.bus_hex = "%02X" % (0x18 + i)
        self.bus_id = f"00000000:{self.bus_hex}:{self.dev_hex}.0"
        if keep_uuid and i == 0:
            self.uuid, self.serial, self.pdi = cap
        else:
            self.uuid = f"GPU-{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
            self.serial = str(1652624000000 + int(h[:8], 16) % 100000000000)
            self.pdi = "0x" + h[16:32]
        self.minor = i
        self.module_id = 2 if n == 1 else i + 1
        self.board_id = "0x6" if n == 1 else "0x" + self.bus_hex.lstrip("0").lower()


def set_versions(text, driver, cuda):
    text = text.replace(CAP_DRIVER, driver)
    text = text.replace(f"CUDA Version: {CAP_CUDA}", f"CUDA Version: {cuda}")
    text = re.sub(r"(CUDA Version\s+: )" + re.escape(CAP_CUDA), r"\g<1>" + cuda, text)
    text = text.replace(f"<cuda_version>{CAP_CUDA}</cuda_version>", f"<cuda_version>{cuda}</cuda_version>")
    return text


def gen_table(cap, gpus):
    lines = cap.split("\n")
    # Lines 0..7: timestamp and header; 8..10: the GPU; 11: separator.
    head, row, sep, rest = lines[:8], lines[8:11], lines[11], lines[12:]
    out = list(head)
    for g in gpus:
        r = [l.replace(CAP_BUS, g.bus_id) for l in row]
        r[0] = "|" + ("%4d" % g.index) + r[0][5:]
        out += r + [sep]
    return "\n".join(out + rest)


def gen_L(cap, gpus):
    m = re.match(r"GPU 0: (.*) \(UUID: (.*)\)\n", cap)
    name = m.group(1)
    return "".join(f"GPU {g.index}: {name} (UUID: {g.uuid})\n" for g in gpus)


def gpu_edits_text(sec, g):
    sec = sec.replace("GPU " + CAP_BUS, "GPU " + g.bus_id, 1)
    subs = [
        (r"(Serial Number\s+: ).*", g.serial),
        (r"(GPU UUID\s+: ).*", g.uuid),
        (r"(GPU PDI\s+: ).*", g.pdi),
        (r"(Minor Number\s+: ).*", str(g.minor)),
        (r"(Board ID\s+: ).*", g.board_id),
        (r"(Module Id\s+: ).*", str(g.module_id)),
        (r"(\n        Bus\s+: ).*", "0x" + g.bus_hex),
        (r"(\n        Device\s+: ).*", "0x" + g.dev_hex),
        (r"(Bus Id\s+: ).*", g.bus_id),
    ]
    for pat, val in subs:
        sec = re.sub(pat, lambda m, v=val: m.group(1) + v, sec, count=1)
    return sec


def gpu_edits_xml(sec, g):
    sec = sec.replace(f'<gpu id="{CAP_BUS}">', f'<gpu id="{g.bus_id}">', 1)
    for tag, val in (("serial", g.serial), ("uuid", g.uuid), ("pdi", g.pdi),
                     ("minor_number", str(g.minor)), ("board_id", g.board_id),
                     ("module_id", str(g.module_id)), ("pci_bus", g.bus_hex),
                     ("pci_device", g.dev_hex), ("pci_bus_id", g.bus_id)):
        sec = re.sub(f"<{tag}>[^<]*</{tag}>", f"<{tag}>{val}</{tag}>", sec, count=1)
    return sec


def split_q(cap):
    i = cap.index("\nGPU " + CAP_BUS) + 1
    return cap[:i], cap[i:]


def split_x(cap):
    a = cap.index('\t<gpu id="')
    b = cap.index("\t</gpu>\n") + len("\t</gpu>\n")
    return cap[:a], cap[a:b], cap[b:]


def qval(csv_header, csv_row, field):
    hdr = [h.split(" [")[0] for h in csv_header.split(", ")]
    vals = csv_row.split(", ")
    if field not in hdr:
        return "[N/A]"  # not in this capture
    v = vals[hdr.index(field)]
    return v.split(" ")[0] if field in ("memory.total", "memory.used", "memory.free",
                                         "utilization.gpu", "power.draw") else v


def gen_query(fx, gpus, driver, product, mig):
    hdr, row = read(fx, "query-gpu.csv").rstrip("\n").split("\n")
    q = lambda f: qval(hdr, row, f)
    n = len(gpus)
    # field, aliases (comma list or -), unit (or -), value function of GPU
    fields = [
        ("timestamp", "-", "-", lambda g: "2026/11/24 18:14:37.000"),
        ("driver_version", "-", "-", lambda g: driver),
        ("count", "-", "-", lambda g: str(n)),
        ("name", "gpu_name", "-", lambda g: product),
        ("serial", "gpu_serial", "-", lambda g: g.serial),
        ("uuid", "gpu_uuid", "-", lambda g: g.uuid),
        ("pci.bus_id", "gpu_bus_id", "-", lambda g: g.bus_id),
        ("pci.domain", "-", "-", lambda g: "0x0000"),
        ("pci.bus", "-", "-", lambda g: "0x" + g.bus_hex),
        ("pci.device", "-", "-", lambda g: "0x" + g.dev_hex),
        ("pci.device_id", "-", "-", lambda g: q_fact(fx, "Device Id", "0x233010DE")),
        ("pci.sub_device_id", "-", "-", lambda g: q_fact(fx, "Sub System Id", "0x16C110DE")),
        ("index", "-", "-", lambda g: str(g.index)),
        ("minor_number", "-", "-", lambda g: str(g.minor)),
        ("vbios_version", "-", "-", lambda g: q_fact(fx, "VBIOS Version", "96.00.DA.00.0C")),
        ("inforom.img", "inforom.image", "-", lambda g: "G520.0200.00.05"),
        ("persistence_mode", "-", "-", lambda g: "Enabled"),
        ("display_active", "-", "-", lambda g: "Disabled"),
        ("accounting.mode", "-", "-", lambda g: "Disabled"),
        ("pstate", "-", "-", lambda g: "P0"),
        ("fan.speed", "-", "%", lambda g: "[N/A]"),
        ("memory.total", "-", "MiB", lambda g: q("memory.total")),
        ("memory.reserved", "-", "MiB", lambda g: "480"),
        ("memory.used", "-", "MiB", lambda g: q("memory.used")),
        ("memory.free", "-", "MiB", lambda g: q("memory.free")),
        ("compute_mode", "-", "-", lambda g: q("compute_mode")),
        ("compute_cap", "-", "-", lambda g: "9.0"),
        ("utilization.gpu", "-", "%", lambda g: q("utilization.gpu")),
        ("utilization.memory", "-", "%", lambda g: "0"),
        ("ecc.mode.current", "-", "-", lambda g: "Enabled"),
        ("ecc.mode.pending", "-", "-", lambda g: "Enabled"),
        ("temperature.gpu", "-", "-", lambda g: q("temperature.gpu")),
        ("temperature.memory", "-", "-", lambda g: "38"),
        ("power.draw", "-", "W", lambda g: q("power.draw")),
        ("power.draw.average", "-", "W", lambda g: "121.40"),
        ("power.draw.instant", "-", "W", lambda g: "121.62"),
        ("power.limit", "-", "W", lambda g: "700.00"),
        ("enforced.power.limit", "-", "W", lambda g: "700.00"),
        ("power.default_limit", "-", "W", lambda g: "700.00"),
        ("power.min_limit", "-", "W", lambda g: "200.00"),
        ("power.max_limit", "-", "W", lambda g: "700.00"),
        ("clocks.current.graphics", "clocks.gr", "MHz", lambda g: "1980"),
        ("clocks.current.sm", "clocks.sm", "MHz", lambda g: "1980"),
        ("clocks.current.memory", "clocks.mem", "MHz", lambda g: "2619"),
        ("clocks.current.video", "clocks.video", "MHz", lambda g: "1545"),
        ("clocks.max.graphics", "clocks.max.gr", "MHz", lambda g: "1980"),
        ("clocks.max.sm", "-", "MHz", lambda g: "1980"),
        ("clocks.max.memory", "clocks.max.mem", "MHz", lambda g: "2619"),
        ("mig.mode.current", "-", "-", lambda g: "Enabled" if mig else q("mig.mode.current")),
        ("mig.mode.pending", "-", "-", lambda g: "Enabled" if mig else "Disabled"),
        ("pcie.link.gen.current", "-", "-", lambda g: "5"),
        ("pcie.link.gen.max", "-", "-", lambda g: "5"),
        ("pcie.link.width.current", "-", "-", lambda g: "16"),
        ("pcie.link.width.max", "-", "-", lambda g: "16"),
        ("gpu_operation_mode.current", "-", "-", lambda g: "[N/A]"),
    ]
    lines = []
    for f, al, unit, fn in fields:
        lines.append("\t".join([f, al, unit] + [fn(g) for g in gpus]))
    return "\n".join(lines) + "\n"


def mig_profiles(lgip):
    """Profiles of a `nvidia-smi mig -lgip` capture (GPU 0): name -> (id, instances, GiB)."""
    prof = {}
    for l in lgip.split("\n"):
        m = re.match(r"\|\s+0\s+MIG (\S+)\s+(\d+)\s+\d+/(\d+)\s+([\d.]+)", l)
        if m:
            prof[m.group(1)] = (int(m.group(2)), int(m.group(3)), float(m.group(4)))
    return prof


def mig_layout(layout, lgip, total_mib, node, gpus):
    """mig.tsv lines for LAYOUT on every GPU: profile placements first-fit over
    the 8 memory slices (a profile of S slices of memory starts at multiples
    of S), GPU instance ids from 1 in layout order, one compute instance each."""
    prof = mig_profiles(lgip)
    total_gib = total_mib / 1024.0
    if layout.startswith("all-"):
        name = layout[4:]
        if name not in prof:
            raise SystemExit(f"gen-nvidia.py: --mig {layout}: no profile {name} in mig -lgip")
        names = [name] * prof[name][1]
    else:
        names = [n for n in layout.split(",") if n]
    lines = []
    for g in gpus:
        used = [False] * 8
        count = {}
        for k, name in enumerate(names):
            if name not in prof:
                raise SystemExit(f"gen-nvidia.py: --mig {layout}: no profile {name} in mig -lgip "
                                 f"(have {', '.join(prof)})")
            pid, total, gib = prof[name]
            count[name] = count.get(name, 0) + 1
            if count[name] > total:
                raise SystemExit(f"gen-nvidia.py: --mig {layout}: at most {total} x {name}")
            size = max(1, round(gib * 8 / total_gib))
            for start in range(0, 8, size):
                if start + size <= 8 and not any(used[start:start + size]) and not (size == 1 and start == 7):
                    break
            else:
                raise SystemExit(f"gen-nvidia.py: --mig {layout}: no room left for {name}")
            for j in range(start, start + size):
                used[j] = True
            h = hashlib.md5(f"{node}/{g.index}/mig/{k}".encode()).hexdigest()
            uuid = f"MIG-{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
            lines.append(f"{g.index}\t{name}\t{k + 1}\t{start}\t{size}\t{uuid}\n")
    return "".join(lines)


def mig_minors():
    """/proc/driver/nvidia-caps/mig-minors as the driver's nvidia-caps writes it
    on any host (MIG mode or not): the device minor of every capability the
    driver may ever create, for GPU minors 0-31, GPU instances 0-14 and compute
    instances 0-7 (MIG user guide, "/dev based nvidia-capabilities": config 1,
    monitor 2, gpu0/gi0/access 3, gpu0/gi0/ci0/access 4, ...,
    gpu31/gi14/ci7/access 4322). The device plugin maps a MIG device to its
    /dev/nvidia-caps/nvidia-cap<N> through it, and fails the device without."""
    lines, minor = ["config 1", "monitor 2"], 3
    for gpu in range(32):
        for gi in range(15):
            lines.append(f"gpu{gpu}/gi{gi}/access {minor}")
            minor += 1
            for ci in range(8):
                lines.append(f"gpu{gpu}/gi{gi}/ci{ci}/access {minor}")
                minor += 1
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fixtures")
    ap.add_argument("out")
    ap.add_argument("--node", required=True)
    ap.add_argument("--gpus", type=int, default=1)
    ap.add_argument("--driver", default=CAP_DRIVER)
    ap.add_argument("--cuda", default=CAP_CUDA)
    ap.add_argument("--mode", default="ok", choices=["ok", "broken"])
    ap.add_argument("--keep-uuid", action="store_true")
    ap.add_argument("--mig", default="")
    a = ap.parse_args()
    fx, out = a.fixtures, a.out
    os.makedirs(out, exist_ok=True)
    cap_uuid = re.match(r"GPU 0: .* \(UUID: (.*)\)", read(fx, "nvidia-smi-L.txt")).group(1)
    cap = (cap_uuid, q_fact(fx, "Serial Number", CAP_SERIAL), q_fact(fx, "GPU PDI", CAP_PDI))
    gpus = [GPU(a.node, i, a.gpus, a.keep_uuid, cap) for i in range(a.gpus)]
    mig = a.mig != ""
    migmode = (lambda t: t) if not mig else (lambda t: re.sub(
        r"(MIG Mode\n\s+Current\s+: )Disabled(\n\s+Pending\s+: )Disabled", r"\1Enabled\2Enabled", t))
    migmode_x = (lambda t: t) if not mig else (lambda t: t.replace(
        "<current_mig>Disabled</current_mig>", "<current_mig>Enabled</current_mig>").replace(
        "<pending_mig>Disabled</pending_mig>", "<pending_mig>Enabled</pending_mig>"))
    sv = lambda t: set_versions(t, a.driver, a.cuda)
    product = re.match(r"GPU 0: (.*) \(UUID", read(fx, "nvidia-smi-L.txt")).group(1)

    write(out, "mode", a.mode + "\n")
    write(out, "smi.txt", sv(gen_table(read(fx, "nvidia-smi.txt"), gpus)))
    write(out, "L.txt", gen_L(read(fx, "nvidia-smi-L.txt"), gpus))

    qhead, qgpu = split_q(read(fx, "nvidia-smi-q.txt"))
    qhead = re.sub(r"(Attached GPUs\s+: )\d+", lambda m: m.group(1) + str(a.gpus), qhead)
    write(out, "q-head.txt", sv(qhead))
    capx = read_opt(fx, "nvidia-smi-q.xml")
    if capx is not None:
        xhead, xgpu, xtail = split_x(capx)
        xhead = re.sub(r"<attached_gpus>\d+</attached_gpus>", f"<attached_gpus>{a.gpus}</attached_gpus>", xhead)
        write(out, "x-head.xml", sv(xhead))
        write(out, "x-tail.xml", sv(xtail))
    for g in gpus:
        write(out, f"q-gpu-{g.index}.txt", sv(migmode(gpu_edits_text(qgpu, g))))
        if capx is not None:
            write(out, f"x-gpu-{g.index}.xml", sv(migmode_x(gpu_edits_xml(xgpu, g))))
    write(out, "gpus.tsv", "".join(f"{g.index}\t{g.uuid}\t{g.bus_id}\n" for g in gpus))
    write(out, "query-gpu.tsv", gen_query(fx, gpus, a.driver, product, mig))
    if mig:
        lgip = read_opt(fx, "mig-lgip.txt")
        if lgip is None:
            raise SystemExit("gen-nvidia.py: --mig needs a mig -lgip capture (mig-lgip.txt) in " + fx)
        hdr, row = read(fx, "query-gpu.csv").rstrip("\n").split("\n")
        write(out, "mig.tsv", mig_layout(a.mig, lgip, int(qval(hdr, row, "memory.total")), a.node, gpus))

    # Compute apps: none run on a simulated node; the captured process is
    # replayed on GPU 0 when the node's data folder holds a file `busy`.
    apps_fields = [("pid", "-", "-"), ("process_name", "name", "-"),
                   ("used_gpu_memory", "used_memory", "MiB"), ("gpu_uuid", "-", "-"),
                   ("gpu_name", "-", "-"), ("gpu_bus_id", "-", "-"), ("gpu_serial", "-", "-")]
    write(out, "query-apps.tsv", "".join("\t".join(f) + "\n" for f in apps_fields))
    write(out, "apps.tsv", "")
    apps = read_opt(fx, "compute-apps.csv")
    if apps is not None:
        hdr, row = apps.rstrip("\n").split("\n")
        vals = row.split(", ")
        g0 = gpus[0]
        write(out, "apps-busy.tsv", "\t".join([vals[0], vals[1], vals[2].split(" ")[0], g0.uuid,
                                               product, g0.bus_id, g0.serial]) + "\n")

    if read_opt(fx, "mig-lgip.txt") is not None:
        lgip = read(fx, "mig-lgip.txt").split("\n")
        body = [l for l in lgip[5:] if l != ""]
        res = lgip[:5]
        for g in gpus:
            res += [("|" + "%4d" % g.index + l[5:]) if l.startswith("|   0  MIG") else l for l in body]
        write(out, "mig-lgip.txt", "\n".join(res) + "\n")

    if read_opt(fx, "topo.txt") is None:
        pass
    elif a.gpus == 1:
        write(out, "topo.txt", read(fx, "topo.txt"))
    else:
        topo = read(fx, "topo.txt").split("\n")
        legend = "\n".join(topo[2:])
        names = [f"GPU{g.index}" for g in gpus]
        t = "\t\x1b[4m" + "\t".join(names) + "\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\x1b[0m\n"
        for g in gpus:
            cells = [" X " if h.index == g.index else "NV18" for h in gpus]
            t += f"GPU{g.index}\t" + "\t".join(cells) + "\t0-15\t0\t\tN/A\n"
        write(out, "topo.txt", t + legend)

    nvml = ".".join(a.driver.split(".")[:2])
    write(out, "version.txt",
          f"NVIDIA-SMI version  : {a.driver}\nNVML version        : {nvml}\n"
          f"DRIVER version      : {a.driver}\nCUDA Version        : {a.cuda}\n")

    pv = read(fx, "proc-version.txt")
    if a.driver != CAP_DRIVER:
        pv = pv.replace("NVIDIA UNIX Open Kernel Module for x86_64  " + CAP_DRIVER,
                        "NVIDIA UNIX x86_64 Kernel Module  " + a.driver)
    if a.mode == "ok":  # a broken driver: module not loaded, no /proc/driver/nvidia
        write(out, "proc-driver/nvidia/version", pv)
        write(out, "proc-driver/nvidia-caps/mig-minors", mig_minors())

    # /proc/modules lines: the captured name, size and refcount ("-": that
    # kernel cannot unload modules), completed with the columns such a kernel
    # prints (dependencies "-", state, address hidden by kptr_restrict, taint).
    mods = ""
    for l in read(fx, "proc-modules-nvidia.txt").splitlines():
        name, size, ref = l.split()[:3]
        mods += f"{name} {size} {ref} - Live 0x0000000000000000 (OE)\n"
    write(out, "modules.txt", mods if a.mode == "ok" else "")


if __name__ == "__main__":
    main()
