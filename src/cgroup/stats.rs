//! Container statistics as containerd wants them: an Any of
//! `io.containerd.cgroups.v1.Metrics` or `.v2.Metrics`, read from the
//! container's cgroup files (for runsc: the cgroup of the sandbox the
//! container owns), or mapped from a runtime's `events --stats` JSON (runsc
//! containers that join a pod's sandbox, which only gVisor accounts apart).

use std::collections::HashMap;
use std::path::Path;

use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use serde_json::Value;

use super::{read_keyed, read_u64, Cgroup, CgroupError};

/// Type URL of cgroup v1 metrics.
pub const V1_TYPE: &str = "io.containerd.cgroups.v1.Metrics";
/// Type URL of cgroup v2 metrics.
pub const V2_TYPE: &str = "io.containerd.cgroups.v2.Metrics";

/// Nanoseconds per USER_HZ tick (cpuacct.stat).
const NS_PER_TICK: u64 = 10_000_000;

fn pack(type_url: &str, m: &impl Message) -> Result<Any, CgroupError> {
    let mut any = Any::new();
    any.type_url = type_url.to_string();
    any.value = m
        .write_to_bytes()
        .map_err(|e| CgroupError(format!("encoding metrics: {e}")))?;
    Ok(any)
}

/// A limit file: "max" is unlimited (u64::MAX).
fn read_limit(path: &Path) -> u64 {
    match std::fs::read_to_string(path) {
        Ok(s) if s.trim() == "max" => u64::MAX,
        Ok(s) => s.trim().parse().unwrap_or(0),
        Err(_) => 0,
    }
}

impl Cgroup {
    /// The cgroup's statistics, in the host's cgroup version. Every section
    /// containerd-shim-runc-v2 sends is there, zeros where a controller or
    /// file is missing (clients such as nerdctl dereference them).
    pub fn metrics(&self) -> Result<Any, CgroupError> {
        if self.unified {
            pack(V2_TYPE, &self.v2_metrics())
        } else {
            pack(V1_TYPE, &self.v1_metrics())
        }
    }

    fn v1_metrics(&self) -> v1::Metrics {
        let mut m = v1::Metrics::new();
        let mut pids = v1::PidsStat::new();
        pids.current = read_u64(&self.file("pids", "pids.current", ""));
        pids.limit = read_u64(&self.file("pids", "pids.max", ""));
        m.pids = Some(pids).into();
        m.cpu = Some(self.v1_cpu()).into();
        m.memory = Some(self.v1_memory()).into();

        let oom = read_keyed(&self.file("memory", "memory.oom_control", ""));
        let mut ctl = v1::MemoryOomControl::new();
        ctl.oom_kill_disable = oom.get("oom_kill_disable").copied().unwrap_or(0);
        ctl.under_oom = oom.get("under_oom").copied().unwrap_or(0);
        ctl.oom_kill = oom.get("oom_kill").copied().unwrap_or(0);
        m.memory_oom_control = Some(ctl).into();

        m.blkio = Some(self.v1_blkio()).into();
        m.hugetlb = hugepage_sizes(&self.hugepages)
            .into_iter()
            .map(|size| {
                let f = |name: &str| self.file("hugetlb", &format!("hugetlb.{size}.{name}"), "");
                let mut h = v1::HugetlbStat::new();
                h.usage = read_u64(&f("usage_in_bytes"));
                h.max = read_u64(&f("max_usage_in_bytes"));
                h.failcnt = read_u64(&f("failcnt"));
                h.pagesize = size;
                h
            })
            .collect();

        let rdma = |name: &str| -> Vec<v1::RdmaEntry> {
            read_rdma(&self.file("rdma", name, ""))
                .into_iter()
                .map(|r| {
                    let mut e = v1::RdmaEntry::new();
                    (e.device, e.hca_handles, e.hca_objects) = (r.device, r.handles, r.objects);
                    e
                })
                .collect()
        };
        let mut r = v1::RdmaStat::new();
        r.current = rdma("rdma.current");
        r.limit = rdma("rdma.max");
        m.rdma = Some(r).into();
        m
    }

    fn v1_cpu(&self) -> v1::CPUStat {
        let mut usage = v1::CPUUsage::new();
        usage.total = read_u64(&self.file("cpuacct", "cpuacct.usage", ""));
        usage.per_cpu = read_text(&self.file("cpuacct", "cpuacct.usage_percpu", ""))
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let ticks = read_keyed(&self.file("cpuacct", "cpuacct.stat", ""));
        let ns = |k: &str| {
            ticks
                .get(k)
                .copied()
                .unwrap_or(0)
                .saturating_mul(NS_PER_TICK)
        };
        usage.user = ns("user");
        usage.kernel = ns("system");
        let cpu_stat = read_keyed(&self.file("cpu", "cpu.stat", ""));
        let g = |k: &str| cpu_stat.get(k).copied().unwrap_or(0);
        let mut throttle = v1::Throttle::new();
        throttle.periods = g("nr_periods");
        throttle.throttled_periods = g("nr_throttled");
        throttle.throttled_time = g("throttled_time");
        let mut cpu = v1::CPUStat::new();
        cpu.usage = Some(usage).into();
        cpu.throttling = Some(throttle).into();
        cpu
    }

    fn v1_memory(&self) -> v1::MemoryStat {
        let s = read_keyed(&self.file("memory", "memory.stat", ""));
        let g = |k: &str| s.get(k).copied().unwrap_or(0);
        let mut mem = v1::MemoryStat::new();
        mem.cache = g("cache");
        mem.rss = g("rss");
        mem.rss_huge = g("rss_huge");
        mem.mapped_file = g("mapped_file");
        mem.dirty = g("dirty");
        mem.writeback = g("writeback");
        mem.pg_pg_in = g("pgpgin");
        mem.pg_pg_out = g("pgpgout");
        mem.pg_fault = g("pgfault");
        mem.pg_maj_fault = g("pgmajfault");
        mem.inactive_anon = g("inactive_anon");
        mem.active_anon = g("active_anon");
        mem.inactive_file = g("inactive_file");
        mem.active_file = g("active_file");
        mem.unevictable = g("unevictable");
        mem.hierarchical_memory_limit = g("hierarchical_memory_limit");
        mem.hierarchical_swap_limit = g("hierarchical_memsw_limit");
        mem.total_cache = g("total_cache");
        mem.total_rss = g("total_rss");
        mem.total_rss_huge = g("total_rss_huge");
        mem.total_mapped_file = g("total_mapped_file");
        mem.total_dirty = g("total_dirty");
        mem.total_writeback = g("total_writeback");
        mem.total_pg_pg_in = g("total_pgpgin");
        mem.total_pg_pg_out = g("total_pgpgout");
        mem.total_pg_fault = g("total_pgfault");
        mem.total_pg_maj_fault = g("total_pgmajfault");
        mem.total_inactive_anon = g("total_inactive_anon");
        mem.total_active_anon = g("total_active_anon");
        mem.total_inactive_file = g("total_inactive_file");
        mem.total_active_file = g("total_active_file");
        mem.total_unevictable = g("total_unevictable");
        let entry = |prefix: &str| {
            let mut e = v1::MemoryEntry::new();
            let f = |name: &str| self.file("memory", &format!("{prefix}.{name}"), "");
            e.usage = read_u64(&f("usage_in_bytes"));
            e.limit = read_u64(&f("limit_in_bytes"));
            e.max = read_u64(&f("max_usage_in_bytes"));
            e.failcnt = read_u64(&f("failcnt"));
            e
        };
        mem.usage = Some(entry("memory")).into();
        mem.swap = Some(entry("memory.memsw")).into();
        mem.kernel = Some(entry("memory.kmem")).into();
        mem.kernel_tcp = Some(entry("memory.kmem.tcp")).into();
        mem
    }

    /// blkio as containerd's cgroups library reads it: the CFQ files
    /// (`blkio.io_serviced_recursive`, ...) or BFQ's (`blkio.bfq.*`) where
    /// the kernel has them; when they are missing or list no device, the
    /// throttle files (the `_recursive` ones where the kernel has them).
    fn v1_blkio(&self) -> v1::BlkIOStat {
        let devices = read_partitions(&self.partitions);
        let f = |name: &str| self.file("blkio", &format!("blkio.{name}"), "");
        let read = |name: &str| parse_blkio(&read_text(&f(name)), &devices);
        let mut b = v1::BlkIOStat::new();
        let scheduler = ["", "bfq."]
            .into_iter()
            .find(|p| f(&format!("{p}io_serviced_recursive")).is_file());
        if let Some(p) = scheduler {
            b.io_service_bytes_recursive = read(&format!("{p}io_service_bytes_recursive"));
            b.io_serviced_recursive = read(&format!("{p}io_serviced_recursive"));
            b.io_queued_recursive = read(&format!("{p}io_queued_recursive"));
            b.io_service_time_recursive = read(&format!("{p}io_service_time_recursive"));
            b.io_wait_time_recursive = read(&format!("{p}io_wait_time_recursive"));
            b.io_merged_recursive = read(&format!("{p}io_merged_recursive"));
            b.io_time_recursive = read(&format!("{p}time_recursive"));
            b.sectors_recursive = read(&format!("{p}sectors_recursive"));
        }
        let listed = [
            &b.io_service_bytes_recursive,
            &b.io_serviced_recursive,
            &b.io_queued_recursive,
            &b.io_service_time_recursive,
            &b.io_wait_time_recursive,
            &b.io_merged_recursive,
            &b.io_time_recursive,
            &b.sectors_recursive,
        ]
        .iter()
        .any(|v| !v.is_empty());
        if !listed {
            let throttle = |name: &str| {
                let recursive = format!("throttle.{name}_recursive");
                if f(&recursive).is_file() {
                    read(&recursive)
                } else {
                    read(&format!("throttle.{name}"))
                }
            };
            b.io_service_bytes_recursive = throttle("io_service_bytes");
            b.io_serviced_recursive = throttle("io_serviced");
        }
        b
    }

    fn v2_metrics(&self) -> v2::Metrics {
        let f = |name: &str| self.file("", "", name);
        let mut m = v2::Metrics::new();
        let mut pids = v2::PidsStat::new();
        pids.current = read_u64(&f("pids.current"));
        pids.limit = read_limit(&f("pids.max"));
        m.pids = Some(pids).into();

        let c = read_keyed(&f("cpu.stat"));
        let g = |k: &str| c.get(k).copied().unwrap_or(0);
        let mut cpu = v2::CPUStat::new();
        cpu.usage_usec = g("usage_usec");
        cpu.user_usec = g("user_usec");
        cpu.system_usec = g("system_usec");
        cpu.nr_periods = g("nr_periods");
        cpu.nr_throttled = g("nr_throttled");
        cpu.throttled_usec = g("throttled_usec");
        cpu.nr_bursts = g("nr_bursts");
        cpu.burst_usec = g("burst_usec");
        cpu.psi = read_psi(&f("cpu.pressure"));
        m.cpu = Some(cpu).into();

        let s = read_keyed(&f("memory.stat"));
        let g = |k: &str| s.get(k).copied().unwrap_or(0);
        let mut mem = v2::MemoryStat::new();
        mem.anon = g("anon");
        mem.file = g("file");
        mem.kernel_stack = g("kernel_stack");
        mem.slab = g("slab");
        mem.sock = g("sock");
        mem.shmem = g("shmem");
        mem.file_mapped = g("file_mapped");
        mem.file_dirty = g("file_dirty");
        mem.file_writeback = g("file_writeback");
        mem.anon_thp = g("anon_thp");
        mem.inactive_anon = g("inactive_anon");
        mem.active_anon = g("active_anon");
        mem.inactive_file = g("inactive_file");
        mem.active_file = g("active_file");
        mem.unevictable = g("unevictable");
        mem.slab_reclaimable = g("slab_reclaimable");
        mem.slab_unreclaimable = g("slab_unreclaimable");
        mem.pgfault = g("pgfault");
        mem.pgmajfault = g("pgmajfault");
        mem.workingset_refault = g("workingset_refault");
        mem.workingset_activate = g("workingset_activate");
        mem.workingset_nodereclaim = g("workingset_nodereclaim");
        mem.pgrefill = g("pgrefill");
        mem.pgscan = g("pgscan");
        mem.pgsteal = g("pgsteal");
        mem.pgactivate = g("pgactivate");
        mem.pgdeactivate = g("pgdeactivate");
        mem.pglazyfree = g("pglazyfree");
        mem.pglazyfreed = g("pglazyfreed");
        mem.thp_fault_alloc = g("thp_fault_alloc");
        mem.thp_collapse_alloc = g("thp_collapse_alloc");
        mem.usage = read_u64(&f("memory.current"));
        mem.usage_limit = read_limit(&f("memory.max"));
        mem.swap_usage = read_u64(&f("memory.swap.current"));
        mem.swap_limit = read_limit(&f("memory.swap.max"));
        mem.max_usage = read_u64(&f("memory.peak"));
        mem.swap_max_usage = read_u64(&f("memory.swap.peak"));
        mem.psi = read_psi(&f("memory.pressure"));
        m.memory = Some(mem).into();

        let e = read_keyed(&f("memory.events"));
        let g = |k: &str| e.get(k).copied().unwrap_or(0);
        let mut ev = v2::MemoryEvents::new();
        ev.low = g("low");
        ev.high = g("high");
        ev.max = g("max");
        ev.oom = g("oom");
        ev.oom_kill = g("oom_kill");
        ev.oom_group_kill = g("oom_group_kill");
        m.memory_events = Some(ev).into();

        let mut io = v2::IOStat::new();
        io.usage = parse_io_stat(&read_text(&f("io.stat")));
        io.psi = read_psi(&f("io.pressure"));
        m.io = Some(io).into();

        m.hugetlb = hugepage_sizes(&self.hugepages)
            .into_iter()
            .map(|size| {
                let mut h = v2::HugeTlbStat::new();
                h.current = read_u64(&f(&format!("hugetlb.{size}.current")));
                h.max = read_limit(&f(&format!("hugetlb.{size}.max")));
                // hugetlb.<size>.events: "max N", allocations refused at the limit.
                h.failcnt = read_keyed(&f(&format!("hugetlb.{size}.events")))
                    .get("max")
                    .copied()
                    .unwrap_or(0);
                h.pagesize = size;
                h
            })
            .collect();

        let rdma = |name: &str| -> Vec<v2::RdmaEntry> {
            read_rdma(&f(name))
                .into_iter()
                .map(|r| {
                    let mut e = v2::RdmaEntry::new();
                    (e.device, e.hca_handles, e.hca_objects) = (r.device, r.handles, r.objects);
                    e
                })
                .collect()
        };
        let mut r = v2::RdmaStat::new();
        r.current = rdma("rdma.current");
        r.limit = rdma("rdma.max");
        m.rdma = Some(r).into();
        m
    }
}

/// A file's text; empty when it cannot be read (or is not UTF-8).
fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The host's huge page sizes as cgroup files name them ("2MB", "1GB"),
/// smallest first, from the `hugepages-<N>kB` entries of `dir`.
fn hugepage_sizes(dir: &Path) -> Vec<String> {
    let mut kbs: Vec<u64> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()
        })
        .collect();
    kbs.sort_unstable();
    kbs.dedup();
    kbs.into_iter().map(page_size_name).collect()
}

/// 2048 -> "2MB", 1048576 -> "1GB", 64 -> "64KB" (the kernel's names).
fn page_size_name(kb: u64) -> String {
    if kb >= 1 << 20 {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    }
}

/// /proc/partitions: `major minor #blocks name` -> "/dev/name" by
/// (major, minor); the first name of a device wins, other lines are skipped.
fn read_partitions(path: &Path) -> HashMap<(u64, u64), String> {
    let mut devices = HashMap::new();
    for line in read_text(path).lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let [major, minor, _, name] = w.as_slice() else {
            continue;
        };
        if let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) {
            devices
                .entry((major, minor))
                .or_insert_with(|| format!("/dev/{name}"));
        }
    }
    devices
}

/// A v1 blkio file: `MAJ:MIN OP VALUE` lines, `MAJ:MIN VALUE` for the
/// files without operations (sectors, time). The `Total` line and lines
/// that do not parse are skipped.
fn parse_blkio(text: &str, devices: &HashMap<(u64, u64), String>) -> Vec<v1::BlkIOEntry> {
    text.lines()
        .filter_map(|line| {
            let w: Vec<&str> = line.split_whitespace().collect();
            let (dev, op, value) = match w.as_slice() {
                [dev, op, value] => (*dev, *op, *value),
                [dev, value] => (*dev, "", *value),
                _ => return None,
            };
            let (major, minor) = dev.split_once(':')?;
            let mut e = v1::BlkIOEntry::new();
            e.major = major.parse().ok()?;
            e.minor = minor.parse().ok()?;
            e.value = value.parse().ok()?;
            e.op = op.to_string();
            e.device = devices
                .get(&(e.major, e.minor))
                .cloned()
                .unwrap_or_default();
            Some(e)
        })
        .collect()
}

/// v2 io.stat: `MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N`
/// per device. Unknown or unreadable keys are ignored; a line without a
/// device number is skipped.
fn parse_io_stat(text: &str) -> Vec<v2::IOEntry> {
    text.lines()
        .filter_map(|line| {
            let mut w = line.split_whitespace();
            let (major, minor) = w.next()?.split_once(':')?;
            let mut e = v2::IOEntry::new();
            e.major = major.parse().ok()?;
            e.minor = minor.parse().ok()?;
            for (k, v) in w.filter_map(|kv| kv.split_once('=')) {
                let Ok(v) = v.parse() else { continue };
                match k {
                    "rbytes" => e.rbytes = v,
                    "wbytes" => e.wbytes = v,
                    "rios" => e.rios = v,
                    "wios" => e.wios = v,
                    _ => {}
                }
            }
            Some(e)
        })
        .collect()
}

/// A pressure file (cpu.pressure, memory.pressure, io.pressure):
/// `some avg10=0.00 avg60=0.00 avg300=0.00 total=0` and the same for
/// `full`. Absent (None) where the kernel has no PSI, as containerd sends
/// it; a line that does not parse leaves its half out.
fn read_psi(path: &Path) -> MessageField<v2::PSIStats> {
    match std::fs::read_to_string(path) {
        Ok(text) => MessageField::some(parse_psi(&text)),
        Err(_) => MessageField::none(),
    }
}

fn parse_psi(text: &str) -> v2::PSIStats {
    let mut psi = v2::PSIStats::new();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        let half = match w.next() {
            Some("some") => &mut psi.some,
            Some("full") => &mut psi.full,
            _ => continue,
        };
        let mut d = v2::PSIData::new();
        let parsed = w.all(|kv| {
            let Some((k, v)) = kv.split_once('=') else {
                return false;
            };
            let avg = |slot: &mut f64| match v.parse::<f64>() {
                Ok(x) if x.is_finite() => {
                    *slot = x;
                    true
                }
                _ => false,
            };
            match k {
                "avg10" => avg(&mut d.avg10),
                "avg60" => avg(&mut d.avg60),
                "avg300" => avg(&mut d.avg300),
                "total" => v.parse().map(|t| d.total = t).is_ok(),
                _ => true,
            }
        });
        if parsed {
            *half = MessageField::some(d);
        }
    }
    psi
}

/// One line of rdma.current / rdma.max.
struct Rdma {
    device: String,
    handles: u32,
    objects: u32,
}

/// rdma.current / rdma.max: `DEVICE hca_handle=N hca_object=N`, "max" as
/// u32::MAX. A line without a device and a readable value is skipped.
fn read_rdma(path: &Path) -> Vec<Rdma> {
    read_text(path)
        .lines()
        .filter_map(|line| {
            let mut w = line.split_whitespace();
            let mut r = Rdma {
                device: w.next()?.to_string(),
                handles: 0,
                objects: 0,
            };
            let mut any = false;
            for (k, v) in w.filter_map(|kv| kv.split_once('=')) {
                let v = match v {
                    "max" => u32::MAX,
                    v => match v.parse() {
                        Ok(v) => v,
                        Err(_) => continue,
                    },
                };
                match k {
                    "hca_handle" => r.handles = v,
                    "hca_object" => r.objects = v,
                    _ => continue,
                }
                any = true;
            }
            any.then_some(r)
        })
        .collect()
}

/// Maps a runtime's `events --stats` JSON (runc's and runsc's format) to
/// the metrics type of the host's cgroup version. Limits the runtime leaves
/// at 0 (runsc does) are taken from `limits`, the sandbox's host cgroup.
/// For runsc containers that join a pod's sandbox: their figures exist only
/// inside gVisor (the host cgroup holds the whole pod). Sections the runtime
/// does not measure are sent empty, never left out.
pub fn from_runtime_stats(
    json: &[u8],
    unified: bool,
    limits: Option<&Cgroup>,
) -> Result<Any, CgroupError> {
    let v: Value = serde_json::from_slice(json)
        .map_err(|e| CgroupError(format!("unreadable runtime stats: {e}")))?;
    let d = v.get("data").unwrap_or(&Value::Null);
    let n = |ptr: &str| d.pointer(ptr).and_then(Value::as_u64).unwrap_or(0);
    let raw: HashMap<String, u64> = d
        .pointer("/memory/raw")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                .collect()
        })
        .unwrap_or_default();
    let r = |k: &str| raw.get(k).copied().unwrap_or(0);
    let or_cgroup = |v: u64, controller: &str, v1: &str, v2: &str| match (v, limits) {
        (0, Some(cg)) => read_limit(&cg.file(controller, v1, v2)),
        _ => v,
    };
    let pids_limit = or_cgroup(n("/pids/limit"), "pids", "pids.max", "pids.max");
    let mem_limit = or_cgroup(
        n("/memory/usage/limit"),
        "memory",
        "memory.limit_in_bytes",
        "memory.max",
    );
    if unified {
        let mut m = v2::Metrics::new();
        let mut pids = v2::PidsStat::new();
        pids.current = n("/pids/current");
        pids.limit = pids_limit;
        m.pids = Some(pids).into();
        let mut cpu = v2::CPUStat::new();
        cpu.usage_usec = n("/cpu/usage/total") / 1000;
        cpu.user_usec = n("/cpu/usage/user") / 1000;
        cpu.system_usec = n("/cpu/usage/kernel") / 1000;
        m.cpu = Some(cpu).into();
        let mut mem = v2::MemoryStat::new();
        mem.usage = n("/memory/usage/usage");
        mem.usage_limit = mem_limit;
        mem.max_usage = n("/memory/usage/max");
        mem.swap_usage = n("/memory/swap/usage");
        mem.swap_limit = n("/memory/swap/limit");
        mem.anon = r("anon");
        mem.file = r("file");
        m.memory = Some(mem).into();
        // Not measured by the runtime: present, with zeros.
        m.memory_events = Some(v2::MemoryEvents::new()).into();
        m.io = Some(v2::IOStat::new()).into();
        m.rdma = Some(v2::RdmaStat::new()).into();
        return pack(V2_TYPE, &m);
    }
    let mut m = v1::Metrics::new();
    let mut pids = v1::PidsStat::new();
    pids.current = n("/pids/current");
    pids.limit = pids_limit;
    m.pids = Some(pids).into();
    let mut usage = v1::CPUUsage::new();
    usage.total = n("/cpu/usage/total");
    usage.user = n("/cpu/usage/user");
    usage.kernel = n("/cpu/usage/kernel");
    usage.per_cpu = d
        .pointer("/cpu/usage/percpu")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let mut cpu = v1::CPUStat::new();
    cpu.usage = Some(usage).into();
    cpu.throttling = Some(v1::Throttle::new()).into();
    m.cpu = Some(cpu).into();
    let entry = |name: &str| {
        let mut e = v1::MemoryEntry::new();
        e.usage = n(&format!("/memory/{name}/usage"));
        e.limit = n(&format!("/memory/{name}/limit"));
        e.max = n(&format!("/memory/{name}/max"));
        e.failcnt = n(&format!("/memory/{name}/failcnt"));
        e
    };
    let mut mem = v1::MemoryStat::new();
    mem.cache = n("/memory/cache");
    mem.rss = r("rss");
    let mut usage_entry = entry("usage");
    usage_entry.limit = mem_limit;
    mem.usage = Some(usage_entry).into();
    mem.swap = Some(entry("swap")).into();
    mem.kernel = Some(entry("kernel")).into();
    mem.kernel_tcp = Some(entry("kernelTCP")).into();
    m.memory = Some(mem).into();
    // Not measured by the runtime: present, with zeros.
    m.memory_oom_control = Some(v1::MemoryOomControl::new()).into();
    m.blkio = Some(v1::BlkIOStat::new()).into();
    m.rdma = Some(v1::RdmaStat::new()).into();
    pack(V1_TYPE, &m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A fake host: a cgroup root, /sys/kernel/mm/hugepages with 2MB and
    /// 1GB pages, and a /proc/partitions naming 8:0 sda and 254:0 vda.
    struct Host {
        dir: tempfile::TempDir,
    }

    impl Host {
        fn new(unified: bool) -> Host {
            let host = Host {
                dir: tempfile::tempdir().unwrap(),
            };
            std::fs::create_dir_all(host.dir.path().join("cg")).unwrap();
            if unified {
                host.write("cg/cgroup.controllers", "cpu io memory pids hugetlb rdma");
            }
            for size in ["hugepages-2048kB", "hugepages-1048576kB", "not-a-size"] {
                std::fs::create_dir_all(host.dir.path().join("hugepages").join(size)).unwrap();
            }
            host.write(
                "partitions",
                "major minor  #blocks  name\n\n   8        0   1000 sda\n 254        0   2000 vda\n 254    0 2000 vda-again\n",
            );
            host
        }

        /// A file under the cgroup root (`pids/ns/c/pids.max`, `ns/c/io.stat`).
        fn write(&self, path: &str, text: &str) {
            let f = self.dir.path().join(path);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, text).unwrap();
        }

        fn cg(&self, file: &str, text: &str) {
            self.write(&format!("cg/{file}"), text);
        }

        fn cgroup(&self) -> Cgroup {
            let mut cg = Cgroup::at(
                &self.dir.path().join("cg"),
                &json!({"linux": {"cgroupsPath": "/ns/c"}}),
                false,
            )
            .unwrap();
            cg.hugepages = self.dir.path().join("hugepages");
            cg.partitions = self.dir.path().join("partitions");
            cg
        }

        fn v1(&self) -> v1::Metrics {
            let any = self.cgroup().metrics().unwrap();
            assert_eq!(any.type_url, V1_TYPE);
            v1::Metrics::parse_from_bytes(&any.value).unwrap()
        }

        fn v2(&self) -> v2::Metrics {
            let any = self.cgroup().metrics().unwrap();
            assert_eq!(any.type_url, V2_TYPE);
            v2::Metrics::parse_from_bytes(&any.value).unwrap()
        }
    }

    /// Every message section a client may dereference is on the wire.
    fn assert_v1_sections(m: &v1::Metrics) {
        assert!(m.pids.is_some() && m.cpu.is_some() && m.memory.is_some());
        assert!(m.cpu.usage.is_some() && m.cpu.throttling.is_some());
        let mem = &m.memory;
        assert!(mem.usage.is_some() && mem.swap.is_some());
        assert!(mem.kernel.is_some() && mem.kernel_tcp.is_some());
        assert!(m.memory_oom_control.is_some());
        assert!(m.blkio.is_some(), "blkio (nerdctl stats dereferences it)");
        assert!(m.rdma.is_some());
    }

    fn assert_v2_sections(m: &v2::Metrics) {
        assert!(m.pids.is_some() && m.cpu.is_some() && m.memory.is_some());
        assert!(m.memory_events.is_some());
        assert!(m.io.is_some(), "io (nerdctl stats dereferences it)");
        assert!(m.rdma.is_some());
    }

    #[test]
    fn v1_files_become_v1_metrics() {
        let h = Host::new(false);
        h.cg("pids/ns/c/pids.current", "3\n");
        h.cg("pids/ns/c/pids.max", "4096\n");
        h.cg("cpuacct/ns/c/cpuacct.usage", "123456789\n");
        h.cg("cpuacct/ns/c/cpuacct.usage_percpu", "100 200 \n");
        h.cg("cpuacct/ns/c/cpuacct.stat", "user 5\nsystem 2\n");
        h.cg(
            "cpu/ns/c/cpu.stat",
            "nr_periods 10\nnr_throttled 4\nthrottled_time 9000\nnr_bursts 0\nburst_time 0\n",
        );
        h.cg(
            "memory/ns/c/memory.stat",
            "cache 4096\nrss 8192\nrss_huge 0\nmapped_file 11\ndirty 12\nwriteback 13\n\
             pgpgin 14\npgpgout 15\npgfault 16\npgmajfault 17\ninactive_anon 18\n\
             active_anon 19\ninactive_file 20\nactive_file 21\nunevictable 22\n\
             hierarchical_memory_limit 67108864\nhierarchical_memsw_limit 134217728\n\
             total_cache 4097\ntotal_rss 8193\ntotal_inactive_file 23\ntotal_pgmajfault 24\n",
        );
        for (prefix, base) in [
            ("memory", 1000),
            ("memory.memsw", 2000),
            ("memory.kmem", 3000),
            ("memory.kmem.tcp", 4000),
        ] {
            for (i, name) in [
                "usage_in_bytes",
                "max_usage_in_bytes",
                "limit_in_bytes",
                "failcnt",
            ]
            .iter()
            .enumerate()
            {
                h.cg(
                    &format!("memory/ns/c/{prefix}.{name}"),
                    &format!("{}\n", base + i),
                );
            }
        }
        h.cg(
            "memory/ns/c/memory.oom_control",
            "oom_kill_disable 1\nunder_oom 1\noom_kill 2\n",
        );
        h.cg(
            "blkio/ns/c/blkio.io_service_bytes_recursive",
            "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n8:0 Total 12288\nTotal 12288\n",
        );
        h.cg(
            "blkio/ns/c/blkio.io_serviced_recursive",
            "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
        );
        for (name, value) in [
            ("io_queued_recursive", 3),
            ("io_service_time_recursive", 4),
            ("io_wait_time_recursive", 5),
            ("io_merged_recursive", 6),
        ] {
            h.cg(
                &format!("blkio/ns/c/blkio.{name}"),
                &format!("254:0 Read {value}\nTotal {value}\n"),
            );
        }
        h.cg("blkio/ns/c/blkio.time_recursive", "254:0 77\n");
        h.cg("blkio/ns/c/blkio.sectors_recursive", "8:0 88\n");
        // Throttle files are ignored while CFQ lists devices.
        h.cg("blkio/ns/c/blkio.throttle.io_serviced", "8:0 Read 999\n");
        h.cg("hugetlb/ns/c/hugetlb.2MB.usage_in_bytes", "2097152\n");
        h.cg("hugetlb/ns/c/hugetlb.2MB.max_usage_in_bytes", "4194304\n");
        h.cg("hugetlb/ns/c/hugetlb.2MB.failcnt", "1\n");
        h.cg("hugetlb/ns/c/hugetlb.2MB.limit_in_bytes", "8388608\n");
        h.cg(
            "rdma/ns/c/rdma.current",
            "mlx5_0 hca_handle=2 hca_object=2000\n",
        );
        h.cg(
            "rdma/ns/c/rdma.max",
            "mlx5_0 hca_handle=max hca_object=4000\n",
        );

        let m = h.v1();
        assert_v1_sections(&m);
        assert_eq!((m.pids.current, m.pids.limit), (3, 4096));
        let usage = &m.cpu.usage;
        assert_eq!(usage.total, 123456789);
        assert_eq!(usage.per_cpu, vec![100, 200]);
        assert_eq!((usage.user, usage.kernel), (50_000_000, 20_000_000));
        let t = &m.cpu.throttling;
        assert_eq!(
            (t.periods, t.throttled_periods, t.throttled_time),
            (10, 4, 9000)
        );

        let mem = &m.memory;
        assert_eq!((mem.cache, mem.rss, mem.mapped_file), (4096, 8192, 11));
        assert_eq!((mem.dirty, mem.writeback), (12, 13));
        assert_eq!((mem.pg_pg_in, mem.pg_pg_out, mem.pg_fault), (14, 15, 16));
        assert_eq!(
            (mem.pg_maj_fault, mem.inactive_anon, mem.active_anon),
            (17, 18, 19)
        );
        assert_eq!(
            (mem.inactive_file, mem.active_file, mem.unevictable),
            (20, 21, 22)
        );
        assert_eq!(mem.hierarchical_memory_limit, 67108864);
        assert_eq!(mem.hierarchical_swap_limit, 134217728);
        assert_eq!((mem.total_cache, mem.total_rss), (4097, 8193));
        assert_eq!((mem.total_inactive_file, mem.total_pg_maj_fault), (23, 24));
        for (e, base) in [
            (&mem.usage, 1000),
            (&mem.swap, 2000),
            (&mem.kernel, 3000),
            (&mem.kernel_tcp, 4000),
        ] {
            assert_eq!(
                (e.usage, e.max, e.limit, e.failcnt),
                (base, base + 1, base + 2, base + 3)
            );
        }
        let oom = &m.memory_oom_control;
        assert_eq!(
            (oom.oom_kill_disable, oom.under_oom, oom.oom_kill),
            (1, 1, 2)
        );

        let b = &m.blkio;
        let entries = |v: &[v1::BlkIOEntry]| -> Vec<(String, u64, u64, String, u64)> {
            v.iter()
                .map(|e| (e.device.clone(), e.major, e.minor, e.op.clone(), e.value))
                .collect()
        };
        let sda = |op: &str, value: u64| ("/dev/sda".to_string(), 8, 0, op.to_string(), value);
        assert_eq!(
            entries(&b.io_service_bytes_recursive),
            vec![
                sda("Read", 4096),
                sda("Write", 8192),
                sda("Sync", 0),
                sda("Async", 12288),
                sda("Discard", 0),
                sda("Total", 12288)
            ]
        );
        assert_eq!(
            entries(&b.io_serviced_recursive),
            vec![sda("Read", 1), sda("Write", 2)]
        );
        let vda = |value: u64| vec![("/dev/vda".to_string(), 254, 0, "Read".to_string(), value)];
        assert_eq!(entries(&b.io_queued_recursive), vda(3));
        assert_eq!(entries(&b.io_service_time_recursive), vda(4));
        assert_eq!(entries(&b.io_wait_time_recursive), vda(5));
        assert_eq!(entries(&b.io_merged_recursive), vda(6));
        assert_eq!(
            entries(&b.io_time_recursive),
            vec![("/dev/vda".to_string(), 254, 0, String::new(), 77)]
        );
        assert_eq!(entries(&b.sectors_recursive), vec![sda("", 88)]);

        let huge: Vec<_> = m
            .hugetlb
            .iter()
            .map(|h| (h.pagesize.as_str(), h.usage, h.max, h.failcnt))
            .collect();
        assert_eq!(huge, [("2MB", 2097152, 4194304, 1), ("1GB", 0, 0, 0)]);

        let rdma = |v: &[v1::RdmaEntry]| -> Vec<(String, u32, u32)> {
            v.iter()
                .map(|e| (e.device.clone(), e.hca_handles, e.hca_objects))
                .collect()
        };
        assert_eq!(rdma(&m.rdma.current), [("mlx5_0".to_string(), 2, 2000)]);
        assert_eq!(
            rdma(&m.rdma.limit),
            [("mlx5_0".to_string(), u32::MAX, 4000)]
        );
    }

    #[test]
    fn v1_blkio_falls_back_to_the_throttle_files() {
        // This host's kind: no CFQ/BFQ files, throttle ones with a Total line.
        let h = Host::new(false);
        h.cg(
            "blkio/ns/c/blkio.throttle.io_service_bytes_recursive",
            "254:0 Read 40960\n254:0 Write 0\n254:0 Total 40960\nTotal 40960\n",
        );
        h.cg(
            "blkio/ns/c/blkio.throttle.io_service_bytes",
            "254:0 Read 1\n",
        );
        h.cg(
            "blkio/ns/c/blkio.throttle.io_serviced",
            "254:0 Read 10\n254:0 Write 0\nTotal 10\n",
        );
        let b = h.v1().blkio;
        let ops = |v: &[v1::BlkIOEntry]| -> Vec<(String, String, u64)> {
            v.iter()
                .map(|e| (e.device.clone(), e.op.clone(), e.value))
                .collect()
        };
        let vda = |op: &str, v: u64| ("/dev/vda".to_string(), op.to_string(), v);
        assert_eq!(
            ops(&b.io_service_bytes_recursive),
            [vda("Read", 40960), vda("Write", 0), vda("Total", 40960)],
            "the _recursive throttle file where the kernel has it"
        );
        assert_eq!(
            ops(&b.io_serviced_recursive),
            [vda("Read", 10), vda("Write", 0)],
            "else the plain one"
        );
        assert!(b.sectors_recursive.is_empty());

        // CFQ files that list no device: the throttle ones as well.
        h.cg("blkio/ns/c/blkio.io_serviced_recursive", "Total 0\n");
        h.cg("blkio/ns/c/blkio.io_service_bytes_recursive", "Total 0\n");
        assert_eq!(h.v1().blkio.io_serviced_recursive.len(), 2);
    }

    #[test]
    fn v1_blkio_reads_bfq_files() {
        let h = Host::new(false);
        h.cg(
            "blkio/ns/c/blkio.bfq.io_service_bytes_recursive",
            "8:0 Read 512\n8:0 Write 1024\nTotal 1536\n",
        );
        h.cg("blkio/ns/c/blkio.bfq.io_serviced_recursive", "8:0 Read 1\n");
        h.cg("blkio/ns/c/blkio.throttle.io_serviced", "8:0 Read 999\n");
        let b = h.v1().blkio;
        assert_eq!(b.io_service_bytes_recursive.len(), 2);
        assert_eq!(b.io_service_bytes_recursive[1].value, 1024);
        assert_eq!(b.io_serviced_recursive[0].value, 1, "not the throttle file");
    }

    #[test]
    fn v1_absent_controllers_give_present_sections_of_zeros() {
        let h = Host::new(false);
        let m = h.v1();
        assert_v1_sections(&m);
        assert_eq!(m.pids.current, 0);
        assert_eq!(m.cpu.usage.total, 0);
        assert!(m.cpu.usage.per_cpu.is_empty());
        assert_eq!(m.memory.usage.usage, 0);
        assert!(m.blkio.io_service_bytes_recursive.is_empty());
        assert_eq!(m.hugetlb.len(), 2, "one zero entry per host page size");
        assert!(m.hugetlb.iter().all(|h| h.usage == 0 && h.failcnt == 0));
        assert!(m.rdma.current.is_empty());
        // And a host without huge pages or /proc/partitions.
        let mut cg = h.cgroup();
        cg.hugepages = h.dir.path().join("nowhere");
        cg.partitions = h.dir.path().join("nowhere");
        let m = v1::Metrics::parse_from_bytes(&cg.metrics().unwrap().value).unwrap();
        assert_v1_sections(&m);
        assert!(m.hugetlb.is_empty());
    }

    #[test]
    fn v2_files_become_v2_metrics() {
        let h = Host::new(true);
        for (f, s) in [
            ("pids.current", "2"),
            ("pids.max", "max"),
            (
                "cpu.stat",
                "usage_usec 500\nuser_usec 300\nsystem_usec 200\nnr_periods 7\n\
                 nr_throttled 3\nthrottled_usec 90\nnr_bursts 1\nburst_usec 5\n",
            ),
            (
                "cpu.pressure",
                "some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\n\
                 full avg10=0.75 avg60=0.00 avg300=0.00 total=6543\n",
            ),
            ("memory.current", "1024"),
            ("memory.max", "max"),
            ("memory.peak", "4096"),
            ("memory.swap.current", "64"),
            ("memory.swap.max", "1048576"),
            ("memory.swap.peak", "128"),
            (
                "memory.stat",
                "anon 512\nfile 256\nkernel 99\nkernel_stack 16\npagetables 8\nsock 4\n\
                 shmem 2\nfile_mapped 32\nfile_dirty 1\nfile_writeback 3\nanon_thp 0\n\
                 inactive_anon 5\nactive_anon 6\ninactive_file 7\nactive_file 8\n\
                 unevictable 9\nslab_reclaimable 10\nslab_unreclaimable 11\nslab 21\n\
                 workingset_refault 12\nworkingset_activate 13\nworkingset_nodereclaim 14\n\
                 pgfault 15\npgmajfault 16\npgrefill 17\npgscan 18\npgsteal 19\n\
                 pgactivate 20\npgdeactivate 21\npglazyfree 22\npglazyfreed 23\n\
                 thp_fault_alloc 24\nthp_collapse_alloc 25\n",
            ),
            (
                "memory.pressure",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=77\n\
                 full avg10=0.00 avg60=0.00 avg300=0.00 total=66\n",
            ),
            (
                "memory.events",
                "low 1\nhigh 2\nmax 4\noom 1\noom_kill 1\noom_group_kill 1\n",
            ),
            (
                "io.stat",
                "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n\
                 254:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6\n",
            ),
            (
                "io.pressure",
                "some avg10=0.10 avg60=0.20 avg300=0.30 total=11\n\
                 full avg10=0.01 avg60=0.02 avg300=0.03 total=10\n",
            ),
            ("hugetlb.2MB.current", "2097152"),
            ("hugetlb.2MB.max", "max"),
            ("hugetlb.2MB.events", "max 3\n"),
            ("hugetlb.1GB.current", "0"),
            ("hugetlb.1GB.max", "0"),
            ("rdma.current", "mlx5_0 hca_handle=1 hca_object=10\n"),
            ("rdma.max", "mlx5_0 hca_handle=max hca_object=max\n"),
        ] {
            h.cg(&format!("ns/c/{f}"), s);
        }
        let m = h.v2();
        assert_v2_sections(&m);
        assert_eq!((m.pids.current, m.pids.limit), (2, u64::MAX));
        let cpu = &m.cpu;
        assert_eq!(
            (cpu.usage_usec, cpu.user_usec, cpu.system_usec),
            (500, 300, 200)
        );
        assert_eq!(
            (cpu.nr_periods, cpu.nr_throttled, cpu.throttled_usec),
            (7, 3, 90)
        );
        assert_eq!((cpu.nr_bursts, cpu.burst_usec), (1, 5));
        let psi = |p: &v2::PSIData| (p.avg10, p.avg60, p.avg300, p.total);
        assert_eq!(psi(&cpu.psi.some), (1.5, 0.25, 0.0, 123456));
        assert_eq!(psi(&cpu.psi.full), (0.75, 0.0, 0.0, 6543));

        let mem = &m.memory;
        assert_eq!(
            (mem.usage, mem.usage_limit, mem.max_usage),
            (1024, u64::MAX, 4096)
        );
        assert_eq!(
            (mem.swap_usage, mem.swap_limit, mem.swap_max_usage),
            (64, 1048576, 128)
        );
        assert_eq!(
            (mem.anon, mem.file, mem.kernel_stack, mem.slab),
            (512, 256, 16, 21)
        );
        assert_eq!((mem.sock, mem.shmem, mem.file_mapped), (4, 2, 32));
        assert_eq!(
            (mem.file_dirty, mem.file_writeback, mem.anon_thp),
            (1, 3, 0)
        );
        assert_eq!(
            (
                mem.inactive_anon,
                mem.active_anon,
                mem.inactive_file,
                mem.active_file
            ),
            (5, 6, 7, 8)
        );
        assert_eq!(
            (
                mem.unevictable,
                mem.slab_reclaimable,
                mem.slab_unreclaimable
            ),
            (9, 10, 11)
        );
        assert_eq!(
            (
                mem.workingset_refault,
                mem.workingset_activate,
                mem.workingset_nodereclaim
            ),
            (12, 13, 14)
        );
        assert_eq!(
            (mem.pgfault, mem.pgmajfault, mem.pgrefill, mem.pgscan),
            (15, 16, 17, 18)
        );
        assert_eq!(
            (mem.pgsteal, mem.pgactivate, mem.pgdeactivate),
            (19, 20, 21)
        );
        assert_eq!(
            (
                mem.pglazyfree,
                mem.pglazyfreed,
                mem.thp_fault_alloc,
                mem.thp_collapse_alloc
            ),
            (22, 23, 24, 25)
        );
        assert_eq!((mem.psi.some.total, mem.psi.full.total), (77, 66));

        let ev = &m.memory_events;
        assert_eq!(
            (
                ev.low,
                ev.high,
                ev.max,
                ev.oom,
                ev.oom_kill,
                ev.oom_group_kill
            ),
            (1, 2, 4, 1, 1, 1)
        );

        let io: Vec<_> =
            m.io.usage
                .iter()
                .map(|e| (e.major, e.minor, e.rbytes, e.wbytes, e.rios, e.wios))
                .collect();
        assert_eq!(io, [(8, 0, 4096, 8192, 1, 2), (254, 0, 1, 2, 3, 4)]);
        assert_eq!(psi(&m.io.psi.some), (0.1, 0.2, 0.3, 11));
        assert_eq!(psi(&m.io.psi.full), (0.01, 0.02, 0.03, 10));

        let huge: Vec<_> = m
            .hugetlb
            .iter()
            .map(|h| (h.pagesize.as_str(), h.current, h.max, h.failcnt))
            .collect();
        assert_eq!(huge, [("2MB", 2097152, u64::MAX, 3), ("1GB", 0, 0, 0)]);

        let rdma = |v: &[v2::RdmaEntry]| -> Vec<(String, u32, u32)> {
            v.iter()
                .map(|e| (e.device.clone(), e.hca_handles, e.hca_objects))
                .collect()
        };
        assert_eq!(rdma(&m.rdma.current), [("mlx5_0".to_string(), 1, 10)]);
        assert_eq!(
            rdma(&m.rdma.limit),
            [("mlx5_0".to_string(), u32::MAX, u32::MAX)]
        );
    }

    #[test]
    fn v2_absent_controllers_give_present_sections_of_zeros() {
        let h = Host::new(true);
        std::fs::create_dir_all(h.dir.path().join("cg/ns/c")).unwrap();
        let m = h.v2();
        assert_v2_sections(&m);
        assert_eq!(
            (m.pids.current, m.cpu.usage_usec, m.memory.usage),
            (0, 0, 0)
        );
        assert_eq!(m.memory_events.oom_kill, 0);
        assert!(m.io.usage.is_empty());
        assert!(
            m.cpu.psi.is_none() && m.memory.psi.is_none() && m.io.psi.is_none(),
            "PSI is left out where the kernel has none, as containerd does"
        );
        assert_eq!(m.hugetlb.len(), 2);
        assert!(m.hugetlb.iter().all(|h| h.current == 0 && h.max == 0));
        // A kernel whose cpu.pressure has no "full" line (before 5.13).
        h.cg(
            "ns/c/cpu.pressure",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n",
        );
        let m = h.v2();
        assert_eq!(m.cpu.psi.some.total, 5);
        assert!(m.cpu.psi.full.is_none());
    }

    #[test]
    fn malformed_files_are_skipped_line_by_line() {
        let h = Host::new(false);
        h.cg("pids/ns/c/pids.current", "lots\n");
        std::fs::write(
            h.dir.path().join("cg/pids/ns/c/pids.max"),
            b"\xff\xfe not UTF-8",
        )
        .unwrap();
        h.cg("cpuacct/ns/c/cpuacct.usage_percpu", "1 x -3 4\n");
        h.cg(
            "cpuacct/ns/c/cpuacct.stat",
            "user\nsystem 18446744073709551615\n",
        );
        h.cg(
            "memory/ns/c/memory.stat",
            "cache\nrss 8192 extra\n\ndirty -1\nmapped_file 7\n",
        );
        h.cg("memory/ns/c/memory.oom_control", "oom_kill=3\noom_kill 1\n");
        h.cg(
            "blkio/ns/c/blkio.throttle.io_service_bytes",
            "8:0 Read\nx:0 Read 1\n8 Read 1\n8:0 Read 1 2\n8:0 Write -5\n8:0 Write 5\n",
        );
        h.cg("hugetlb/ns/c/hugetlb.2MB.usage_in_bytes", "big\n");
        h.cg(
            "rdma/ns/c/rdma.current",
            "lonely\nmlx5_0 hca_handle=x\nmlx5_1 hca_handle=1 hca_object=oops\n",
        );
        std::fs::write(h.dir.path().join("partitions"), "garbage\n1 2\n").unwrap();
        std::fs::write(
            h.dir.path().join("hugepages/hugepages-XkB"),
            "not a dir, not a size",
        )
        .unwrap();
        let m = h.v1();
        assert_v1_sections(&m);
        assert_eq!((m.pids.current, m.pids.limit), (0, 0));
        assert_eq!(m.cpu.usage.per_cpu, vec![1, 4]);
        assert_eq!(m.cpu.usage.user, 0);
        assert_eq!(m.cpu.usage.kernel, u64::MAX, "saturates, no overflow");
        assert_eq!((m.memory.cache, m.memory.rss), (0, 0));
        assert_eq!((m.memory.dirty, m.memory.mapped_file), (0, 7));
        assert_eq!(m.memory_oom_control.oom_kill, 1);
        let b = &m.blkio.io_service_bytes_recursive;
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!(
            (b[0].op.as_str(), b[0].value, b[0].device.as_str()),
            ("Write", 5, "")
        );
        assert_eq!(m.hugetlb[0].usage, 0);
        let r = &m.rdma.current;
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].device.as_str(), r[0].hca_handles), ("mlx5_1", 1));

        let h = Host::new(true);
        for (f, s) in [
            ("pids.max", "maximum"),
            ("memory.max", "12 34"),
            ("cpu.stat", "usage_usec\nuser_usec 3\nsystem_usec three\n"),
            (
                "cpu.pressure",
                "some avg10=x avg60=0.00 avg300=0.00 total=1\nfull avg10=0.50 avg60=0.00 avg300=0.00 total=2\n",
            ),
            ("memory.pressure", "some avg10=0.00 avg60 total=1\nweird\n"),
            ("io.pressure", "some avg10=inf avg60=0 avg300=0 total=-1\n"),
            (
                "io.stat",
                "garbage\n8:x rbytes=1\n8:0 rbytes=abc wbytes=2 rios wios=4\n\n",
            ),
            ("memory.events", "oom_kill\noom 2\n"),
            ("hugetlb.2MB.events", "max\n"),
            ("rdma.max", "\n"),
        ] {
            h.cg(&format!("ns/c/{f}"), s);
        }
        let m = h.v2();
        assert_v2_sections(&m);
        assert_eq!((m.pids.limit, m.memory.usage_limit), (0, 0));
        assert_eq!(
            (m.cpu.usage_usec, m.cpu.user_usec, m.cpu.system_usec),
            (0, 3, 0)
        );
        assert!(m.cpu.psi.some.is_none(), "the bad line is left out");
        assert_eq!(m.cpu.psi.full.avg10, 0.5);
        assert!(m.memory.psi.is_some() && m.memory.psi.some.is_none());
        assert!(m.io.psi.some.is_none());
        let io = &m.io.usage;
        assert_eq!(io.len(), 1);
        assert_eq!((io[0].rbytes, io[0].wbytes, io[0].wios), (0, 2, 4));
        assert_eq!((m.memory_events.oom, m.memory_events.oom_kill), (2, 0));
        assert_eq!(m.hugetlb[0].failcnt, 0);
        assert!(m.rdma.limit.is_empty());
    }

    #[test]
    fn page_sizes_are_named_as_the_kernel_does() {
        assert_eq!(page_size_name(64), "64KB");
        assert_eq!(page_size_name(2048), "2MB");
        assert_eq!(page_size_name(32768), "32MB");
        assert_eq!(page_size_name(1048576), "1GB");
        assert_eq!(page_size_name(16777216), "16GB");
    }

    #[test]
    fn runsc_stats_map_to_either_version() {
        let json = br#"{"type":"stats","id":"x","data":{"cpu":{"usage":{"total":92031437}},
            "memory":{"usage":{"limit":0,"usage":2027520,"failcnt":0}},"pids":{"current":1}}}"#;
        let m =
            v1::Metrics::parse_from_bytes(&from_runtime_stats(json, false, None).unwrap().value)
                .unwrap();
        assert_v1_sections(&m);
        assert_eq!(m.cpu.usage.total, 92031437);
        assert_eq!(m.memory.usage.usage, 2027520);
        assert_eq!(m.pids.current, 1);
        let h = Host::new(false);
        h.cg("pids/ns/c/pids.max", "4096\n");
        let m = v1::Metrics::parse_from_bytes(
            &from_runtime_stats(json, false, Some(&h.cgroup()))
                .unwrap()
                .value,
        )
        .unwrap();
        assert_eq!(m.pids.limit, 4096, "limit from the sandbox cgroup");
        let any = from_runtime_stats(json, true, None).unwrap();
        assert_eq!(any.type_url, V2_TYPE);
        let m = v2::Metrics::parse_from_bytes(&any.value).unwrap();
        assert_v2_sections(&m);
        assert_eq!(m.cpu.usage_usec, 92031);
        assert!(from_runtime_stats(b"nope", false, None).is_err());
        assert!(from_runtime_stats(b"{}", false, None).is_ok());
    }
}
