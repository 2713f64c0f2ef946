//! Container statistics as containerd wants them: an Any of
//! `io.containerd.cgroups.v1.Metrics` or `.v2.Metrics`, read from the
//! container's cgroup files, or mapped from a runtime's `events --stats`
//! JSON (runsc, whose sandbox accounts its containers itself).

use std::collections::HashMap;

use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;
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
fn read_limit(path: &std::path::Path) -> u64 {
    match std::fs::read_to_string(path) {
        Ok(s) if s.trim() == "max" => u64::MAX,
        Ok(s) => s.trim().parse().unwrap_or(0),
        Err(_) => 0,
    }
}

impl Cgroup {
    /// The cgroup's statistics, in the host's cgroup version.
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

        let mut usage = v1::CPUUsage::new();
        usage.total = read_u64(&self.file("cpuacct", "cpuacct.usage", ""));
        usage.per_cpu = std::fs::read_to_string(self.file("cpuacct", "cpuacct.usage_percpu", ""))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let ticks = read_keyed(&self.file("cpuacct", "cpuacct.stat", ""));
        usage.user = ticks.get("user").copied().unwrap_or(0) * NS_PER_TICK;
        usage.kernel = ticks.get("system").copied().unwrap_or(0) * NS_PER_TICK;
        let cpu_stat = read_keyed(&self.file("cpu", "cpu.stat", ""));
        let mut throttle = v1::Throttle::new();
        throttle.periods = cpu_stat.get("nr_periods").copied().unwrap_or(0);
        throttle.throttled_periods = cpu_stat.get("nr_throttled").copied().unwrap_or(0);
        throttle.throttled_time = cpu_stat.get("throttled_time").copied().unwrap_or(0);
        let mut cpu = v1::CPUStat::new();
        cpu.usage = Some(usage).into();
        cpu.throttling = Some(throttle).into();
        m.cpu = Some(cpu).into();

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
        m.memory = Some(mem).into();

        let oom = read_keyed(&self.file("memory", "memory.oom_control", ""));
        let mut ctl = v1::MemoryOomControl::new();
        ctl.oom_kill_disable = oom.get("oom_kill_disable").copied().unwrap_or(0);
        ctl.under_oom = oom.get("under_oom").copied().unwrap_or(0);
        ctl.oom_kill = oom.get("oom_kill").copied().unwrap_or(0);
        m.memory_oom_control = Some(ctl).into();
        m
    }

    fn v2_metrics(&self) -> v2::Metrics {
        let f = |name: &str| self.file("", "", name);
        let mut m = v2::Metrics::new();
        let mut pids = v2::PidsStat::new();
        pids.current = read_u64(&f("pids.current"));
        pids.limit = read_u64(&f("pids.max"));
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
        mem.usage = read_u64(&f("memory.current"));
        mem.usage_limit = read_limit(&f("memory.max"));
        mem.swap_usage = read_u64(&f("memory.swap.current"));
        mem.swap_limit = read_limit(&f("memory.swap.max"));
        mem.max_usage = read_u64(&f("memory.peak"));
        m.memory = Some(mem).into();

        let e = read_keyed(&f("memory.events"));
        let g = |k: &str| e.get(k).copied().unwrap_or(0);
        let mut ev = v2::MemoryEvents::new();
        ev.low = g("low");
        ev.high = g("high");
        ev.max = g("max");
        ev.oom = g("oom");
        ev.oom_kill = g("oom_kill");
        m.memory_events = Some(ev).into();
        m
    }
}

/// Maps a runtime's `events --stats` JSON (runc's and runsc's format) to
/// the metrics type of the host's cgroup version. Limits the runtime leaves
/// at 0 (runsc does) are taken from `limits`, the sandbox's host cgroup.
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
    pack(V1_TYPE, &m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn v1_files_become_v1_metrics() {
        let root = tempfile::tempdir().unwrap();
        let w = |p: &str, s: &str| {
            let f = root.path().join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, s).unwrap();
        };
        w("pids/ns/c/pids.current", "3\n");
        w("pids/ns/c/pids.max", "4096\n");
        w("cpuacct/ns/c/cpuacct.usage", "123456789\n");
        w("cpuacct/ns/c/cpuacct.usage_percpu", "100 200 \n");
        w("cpuacct/ns/c/cpuacct.stat", "user 5\nsystem 2\n");
        w("memory/ns/c/memory.usage_in_bytes", "2097152\n");
        w("memory/ns/c/memory.limit_in_bytes", "67108864\n");
        w("memory/ns/c/memory.stat", "cache 4096\nrss 8192\n");
        w(
            "memory/ns/c/memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        );
        let cg = Cgroup::at(
            root.path(),
            &json!({"linux": {"cgroupsPath": "/ns/c"}}),
            false,
        )
        .unwrap();
        let any = cg.metrics().unwrap();
        assert_eq!(any.type_url, V1_TYPE);
        let m = v1::Metrics::parse_from_bytes(&any.value).unwrap();
        assert_eq!((m.pids.current, m.pids.limit), (3, 4096));
        assert_eq!(m.cpu.usage.total, 123456789);
        assert_eq!(m.cpu.usage.per_cpu, vec![100, 200]);
        assert_eq!(m.cpu.usage.user, 50_000_000);
        assert_eq!(m.memory.usage.usage, 2097152);
        assert_eq!(m.memory.usage.limit, 67108864);
        assert_eq!((m.memory.cache, m.memory.rss), (4096, 8192));
        assert_eq!(m.memory_oom_control.oom_kill, 1);
    }

    #[test]
    fn v2_files_become_v2_metrics() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "").unwrap();
        let d = root.path().join("ns/c");
        std::fs::create_dir_all(&d).unwrap();
        for (f, s) in [
            ("pids.current", "2"),
            ("pids.max", "max"),
            (
                "cpu.stat",
                "usage_usec 500\nuser_usec 300\nsystem_usec 200\n",
            ),
            ("memory.current", "1024"),
            ("memory.max", "max"),
            ("memory.stat", "anon 512\nfile 256\n"),
            ("memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n"),
        ] {
            std::fs::write(d.join(f), s).unwrap();
        }
        let cg = Cgroup::at(
            root.path(),
            &json!({"linux": {"cgroupsPath": "ns/c"}}),
            false,
        )
        .unwrap();
        let any = cg.metrics().unwrap();
        assert_eq!(any.type_url, V2_TYPE);
        let m = v2::Metrics::parse_from_bytes(&any.value).unwrap();
        assert_eq!(m.pids.current, 2);
        assert_eq!(m.cpu.usage_usec, 500);
        assert_eq!((m.memory.usage, m.memory.usage_limit), (1024, u64::MAX));
        assert_eq!((m.memory.anon, m.memory.file), (512, 256));
        assert_eq!(m.memory_events.oom_kill, 1);
    }

    #[test]
    fn runsc_stats_map_to_either_version() {
        let json = br#"{"type":"stats","id":"x","data":{"cpu":{"usage":{"total":92031437}},
            "memory":{"usage":{"limit":0,"usage":2027520,"failcnt":0}},"pids":{"current":1}}}"#;
        let m =
            v1::Metrics::parse_from_bytes(&from_runtime_stats(json, false, None).unwrap().value)
                .unwrap();
        assert_eq!(m.cpu.usage.total, 92031437);
        assert_eq!(m.memory.usage.usage, 2027520);
        assert_eq!(m.pids.current, 1);
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("pids/ns/c")).unwrap();
        std::fs::write(root.path().join("pids/ns/c/pids.max"), "4096\n").unwrap();
        let cg = Cgroup::at(
            root.path(),
            &json!({"linux": {"cgroupsPath": "ns/c"}}),
            false,
        )
        .unwrap();
        let m = v1::Metrics::parse_from_bytes(
            &from_runtime_stats(json, false, Some(&cg)).unwrap().value,
        )
        .unwrap();
        assert_eq!(m.pids.limit, 4096, "limit from the sandbox cgroup");
        let any = from_runtime_stats(json, true, None).unwrap();
        assert_eq!(any.type_url, V2_TYPE);
        let m = v2::Metrics::parse_from_bytes(&any.value).unwrap();
        assert_eq!(m.cpu.usage_usec, 92031);
        assert!(from_runtime_stats(b"nope", false, None).is_err());
    }
}
