import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time per party (a set of processes) over an interval, read from /proc (Linux). On a machine
 * without /proc every figure is NaN rather than a guess.
 */

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Fields of /proc/<pid>/stat after the command name (which may contain spaces). */
function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** User plus system CPU time of one process so far, in ms; undefined once it has gone. */
export function processCpuMs(pid: number): number | undefined {
  const f = statFields(pid);
  if (!f) return undefined;
  // After the name: state(0) ppid(1) ... utime(11) stime(12)
  return ((Number(f[11]) + Number(f[12])) * 1000) / clockTicks();
}

export function parentOf(pid: number): number | undefined {
  const f = statFields(pid);
  return f ? Number(f[1]) : undefined;
}

/** A process and all its direct children (PostgreSQL's postmaster and its backends). */
export function withChildren(pid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return [pid];
  }
  return [pid, ...entries.map(Number).filter((p) => parentOf(p) === pid)];
}

/** Busy and total CPU time of the whole machine so far, in ms, from /proc/stat. */
function machineMs(): { busy: number; total: number } {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = cpu[3] + cpu[4];
    return { busy: ((total - idle) * 1000) / clockTicks(), total: (total * 1000) / clockTicks() };
  } catch {
    return { busy: Number.NaN, total: Number.NaN };
  }
}

export type Parties = Record<string, () => number[]>;

/** Percent of one core per party (200 % is both cores of a 2-core machine), plus the machine's total. */
export type CpuShares = Record<string, number>;

export class CpuMeter {
  private startTimes = new Map<string, Map<number, number>>();
  private startMachine = machineMs();
  private startWall = Date.now();

  constructor(private readonly parties: Parties) {}

  private sample(): Map<string, Map<number, number>> {
    const out = new Map<string, Map<number, number>>();
    for (const [name, pids] of Object.entries(this.parties)) {
      const times = new Map<number, number>();
      for (const pid of pids()) {
        const ms = processCpuMs(pid);
        if (ms !== undefined) times.set(pid, ms);
      }
      out.set(name, times);
    }
    return out;
  }

  start(): void {
    this.startTimes = this.sample();
    this.startMachine = machineMs();
    this.startWall = Date.now();
  }

  /** Processes that appeared during the interval count in full; ones that ended are lost (none here). */
  stop(): CpuShares {
    const end = this.sample();
    const machine = machineMs();
    const wall = Date.now() - this.startWall;
    const shares: CpuShares = {};
    for (const [name, times] of end) {
      let used = 0;
      for (const [pid, ms] of times) used += ms - (this.startTimes.get(name)?.get(pid) ?? 0);
      shares[name] = times.size ? (100 * used) / wall : Number.NaN;
    }
    shares['machine (all processes)'] = (100 * (machine.busy - this.startMachine.busy)) / wall;
    return shares;
  }
}
