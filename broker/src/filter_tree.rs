//! Recompiling libseccomp's program as a search over syscall-number ranges. Shared by
//! `build.rs`, which compiles the filter with it and checks the result against libseccomp's own
//! program by emulation on every build, and the unit tests.
//!
//! libseccomp tests each syscall with a rule of its own: 454 instructions for the broker's
//! filter. The kernel converts and JIT-compiles a filter as it installs it, in time linear in
//! its length, and that install is on the path of every start (docs/performance.md).
//! Neighbouring syscall numbers mostly share an action, so [`compile`] works out, by partial
//! evaluation of libseccomp's program, the decision for every range of numbers between the
//! constants it compares the number with, merges neighbours that decide alike, and emits a
//! binary search over the ranges. Calls whose decision looks at arguments keep libseccomp's
//! argument checks, specialised to their number. [`equivalent`] then runs both programs on
//! every range boundary, and with many argument values wherever either looks at them.

use crate::filter_patch::Insn;

const LD_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// `seccomp_data` offsets: the syscall number and the architecture.
const NR: u32 = 0;
const ARCH: u32 = 4;

/// What the kernel passes the filter (`struct seccomp_data`), as the words it loads.
#[derive(Debug, Clone, Copy)]
pub struct Data {
    pub nr: u32,
    pub arch: u32,
    pub ip: u64,
    pub args: [u64; 6],
}

impl Data {
    fn word(&self, offset: u32) -> Option<u32> {
        let word = |v: u64, high: bool| if high { (v >> 32) as u32 } else { v as u32 };
        match offset {
            NR => Some(self.nr),
            ARCH => Some(self.arch),
            8 | 12 => Some(word(self.ip, offset == 12)),
            16..=63 if offset.is_multiple_of(4) => {
                let i = (offset - 16) / 8;
                Some(word(self.args[i as usize], (offset - 16) % 8 == 4))
            }
            _ => None,
        }
    }
}

/// Run `prog` on `data` as the kernel would: what it returns, and whether it looked at anything
/// but the number and the architecture. `None` for anything the kernel would refuse to load
/// (an unknown instruction, a jump out of the program, a load outside `seccomp_data`).
fn traced(prog: &[Insn], data: &Data) -> Option<(u32, bool)> {
    let (mut a, mut pc, mut looked) = (0u32, 0usize, false);
    loop {
        let &(code, jt, jf, k) = prog.get(pc)?;
        pc += 1;
        let jump = |taken: bool| usize::from(if taken { jt } else { jf });
        match code {
            LD_ABS => {
                a = data.word(k)?;
                looked |= k != NR && k != ARCH;
            }
            AND_K => a &= k,
            JA => pc += k as usize,
            JEQ_K => pc += jump(a == k),
            JGT_K => pc += jump(a > k),
            JGE_K => pc += jump(a >= k),
            JSET_K => pc += jump(a & k != 0),
            RET_K => return Some((k, looked)),
            _ => return None,
        }
    }
}

/// What a program does for one syscall number once the number (and the architecture) are
/// known: return, or look at an argument first.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    Ret(u32),
    /// Load a word that is not the number or the architecture (an argument, the IP), then go on.
    Load(u32, Box<Decision>),
    And(u32, Box<Decision>),
    /// A comparison on a loaded word.
    Jump {
        code: u16,
        k: u32,
        taken: Box<Decision>,
        not_taken: Box<Decision>,
    },
}

/// The accumulator while partially evaluating: known (the number, the architecture, or
/// something computed from them) or a loaded word.
#[derive(Clone, Copy)]
enum Acc {
    Known(u32),
    Loaded,
}

/// `prog` from `pc` on, for syscall `nr` of architecture `arch`.
fn decide(prog: &[Insn], mut pc: usize, mut acc: Acc, nr: u32, arch: u32) -> Decision {
    loop {
        let (code, jt, jf, k) = prog[pc];
        pc += 1;
        let jump = |taken: bool| usize::from(if taken { jt } else { jf });
        match (code, acc) {
            (RET_K, _) => return Decision::Ret(k),
            (JA, _) => pc += k as usize,
            (LD_ABS, _) if k == NR => acc = Acc::Known(nr),
            (LD_ABS, _) if k == ARCH => acc = Acc::Known(arch),
            (LD_ABS, _) => {
                let rest = decide(prog, pc, Acc::Loaded, nr, arch);
                return Decision::Load(k, Box::new(rest));
            }
            (AND_K, Acc::Known(_)) => panic!("filter_tree: AND on the syscall number at {pc}"),
            (AND_K, Acc::Loaded) => {
                let rest = decide(prog, pc, Acc::Loaded, nr, arch);
                return Decision::And(k, Box::new(rest));
            }
            (JEQ_K, Acc::Known(a)) => pc += jump(a == k),
            (JGT_K, Acc::Known(a)) => pc += jump(a > k),
            (JGE_K, Acc::Known(a)) => pc += jump(a >= k),
            (JEQ_K | JGT_K | JGE_K | JSET_K, Acc::Loaded) => {
                return Decision::Jump {
                    code,
                    k,
                    taken: Box::new(decide(prog, pc + usize::from(jt), acc, nr, arch)),
                    not_taken: Box::new(decide(prog, pc + usize::from(jf), acc, nr, arch)),
                }
            }
            _ => panic!(
                "filter_tree: instruction {code:#x} at {} is not supported",
                pc - 1
            ),
        }
    }
}

/// Every syscall number at which a comparison in `prog` can change its outcome.
fn boundaries(prog: &[Insn]) -> Vec<u64> {
    let mut b: Vec<u64> = vec![0, 1 << 32];
    for &(code, _, _, k) in prog {
        if matches!(code, JEQ_K | JGT_K | JGE_K) {
            b.extend([u64::from(k), u64::from(k) + 1]);
        }
    }
    b.sort_unstable();
    b.dedup();
    b
}

/// A jump target while emitting, resolved once everything is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Insn(usize),
    /// The shared return of this action.
    Ret(u32),
    /// The argument checks of range `i`, emitted after the search.
    Checks(usize),
}

/// An instruction while emitting: code, jump targets, constant.
type Pending = (u16, Target, Target, u32);

const NOWHERE: Target = Target::Insn(usize::MAX);

/// Recompile `prog`, whose first `prefix` instructions are kept as they are (they must fall
/// through to `prog[prefix]` for an `arch` call, and end every other architecture's), as a
/// binary search over syscall-number ranges. Panics on a program it does not understand.
pub fn compile(prog: &[Insn], prefix: usize, arch: u32) -> Vec<Insn> {
    // The decision for each range between boundaries, neighbours that decide alike merged.
    let mut ranges: Vec<(u32, Decision)> = Vec::new();
    for w in boundaries(prog).windows(2) {
        let lo = w[0] as u32;
        let d = decide(prog, prefix, Acc::Loaded, lo, arch);
        if ranges.last().map(|(_, last)| last) != Some(&d) {
            ranges.push((lo, d));
        }
    }
    let mut out: Vec<Pending> = vec![(LD_ABS, NOWHERE, NOWHERE, NR)];
    let mut rets: Vec<u32> = Vec::new();
    let root = search(&ranges, 0, ranges.len() - 1, &mut out, &mut rets);
    if out.len() == 1 {
        // One range: nothing to search.
        out.push((JGE_K, root, root, 0));
    }
    let mut checks = vec![usize::MAX; ranges.len()];
    for (i, (_, d)) in ranges.iter().enumerate() {
        if !matches!(d, Decision::Ret(_)) {
            checks[i] = out.len();
            emit(d, &mut out, &mut rets);
        }
    }
    let first_ret = out.len();
    let resolve = |t: Target, at: usize| -> u8 {
        let to = match t {
            Target::Insn(i) => i,
            Target::Ret(k) => first_ret + rets.iter().position(|&r| r == k).expect("placed"),
            Target::Checks(i) => checks[i],
        };
        let distance = to
            .checked_sub(at + 1)
            .expect("filter_tree: a backward jump");
        u8::try_from(distance).unwrap_or_else(|_| {
            panic!("filter_tree: a jump of {distance} instructions (at most 255)")
        })
    };
    let mut program: Vec<Insn> = prog[..prefix].to_vec();
    for (at, &(code, jt, jf, k)) in out.iter().enumerate() {
        let (jt, jf) = if matches!(code, JEQ_K | JGT_K | JGE_K | JSET_K) {
            (resolve(jt, at), resolve(jf, at))
        } else {
            (0, 0)
        };
        program.push((code, jt, jf, k));
    }
    program.extend(rets.iter().map(|&k| (RET_K, 0, 0, k)));
    debug_assert_eq!(program.len(), prefix + out.len() + rets.len());
    program
}

/// Emit the search over `ranges[lo..=hi]` (pre-order, so every jump goes forward) and return
/// where it starts: a node splits at the middle range, "number >= its start" going right.
fn search(
    ranges: &[(u32, Decision)],
    lo: usize,
    hi: usize,
    out: &mut Vec<Pending>,
    rets: &mut Vec<u32>,
) -> Target {
    if lo == hi {
        return match ranges[lo].1 {
            Decision::Ret(k) => shared_ret(k, rets),
            _ => Target::Checks(lo),
        };
    }
    let mid = (lo + hi).div_ceil(2);
    let at = out.len();
    out.push((JGE_K, NOWHERE, NOWHERE, ranges[mid].0));
    let right = search(ranges, mid, hi, out, rets);
    let left = search(ranges, lo, mid - 1, out, rets);
    out[at].1 = right;
    out[at].2 = left;
    Target::Insn(at)
}

fn shared_ret(k: u32, rets: &mut Vec<u32>) -> Target {
    if !rets.contains(&k) {
        rets.push(k);
    }
    Target::Ret(k)
}

/// Emit `d` (argument checks) at the end of `out`; its returns go to the shared ones.
fn emit(d: &Decision, out: &mut Vec<Pending>, rets: &mut Vec<u32>) {
    match d {
        // Reached only in sequence, after a load: a return of its own.
        Decision::Ret(k) => out.push((RET_K, NOWHERE, NOWHERE, *k)),
        Decision::Load(k, rest) => {
            out.push((LD_ABS, NOWHERE, NOWHERE, *k));
            emit(rest, out, rets);
        }
        Decision::And(k, rest) => {
            out.push((AND_K, NOWHERE, NOWHERE, *k));
            emit(rest, out, rets);
        }
        Decision::Jump {
            code,
            k,
            taken,
            not_taken,
        } => {
            let at = out.len();
            out.push((*code, NOWHERE, NOWHERE, *k));
            let mut branch = |b: &Decision, out: &mut Vec<Pending>| match b {
                Decision::Ret(k) => shared_ret(*k, rets),
                b => {
                    let to = out.len();
                    emit(b, out, rets);
                    Target::Insn(to)
                }
            };
            out[at].1 = branch(taken, out);
            out[at].2 = branch(not_taken, out);
        }
    }
}

/// Check that `a` and `b` decide alike: on every syscall number at or next to a boundary
/// either compares with, for the architecture `arch` and others; where either program looks at
/// the arguments, with argument values made of every constant either program holds, with and
/// without high bits, and pseudo-random ones. `Err` names the first difference.
pub fn equivalent(a: &[Insn], b: &[Insn], arch: u32) -> Result<(), String> {
    let mut numbers: Vec<u64> = (0..1024).chain([u64::from(u32::MAX)]).collect();
    for &x in boundaries(a).iter().chain(&boundaries(b)) {
        numbers.extend([x.saturating_sub(1), x, x + 1]);
    }
    numbers.retain(|&n| n <= u64::from(u32::MAX));
    numbers.sort_unstable();
    numbers.dedup();
    let mut constants: Vec<u64> = vec![0, 1, u64::from(u32::MAX), u64::MAX];
    constants.extend(a.iter().chain(b).map(|&(_, _, _, k)| u64::from(k)));
    constants.sort_unstable();
    constants.dedup();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut arg_sets: Vec<[u64; 6]> = vec![[0; 6], [u64::MAX; 6]];
    for i in 0..400 {
        let mut args = [0u64; 6];
        for v in &mut args {
            *v = if i % 4 == 3 {
                next()
            } else {
                let c = constants[(next() % constants.len() as u64) as usize];
                c | if next() % 2 == 0 { 0 } else { next() << 32 }
            };
        }
        arg_sets.push(args);
    }
    // One argument at a time over every constant, the others zero.
    for slot in 0..6 {
        for &c in &constants {
            let mut args = [0u64; 6];
            args[slot] = c;
            arg_sets.push(args);
        }
    }
    let other_arches = [0x4000_0003u32, 0xc000_00b7, 0, arch ^ 1];
    for &nr in &numbers {
        for &on in std::iter::once(&arch).chain(&other_arches) {
            for args in &arg_sets {
                let data = Data {
                    nr: nr as u32,
                    arch: on,
                    ip: next(),
                    args: *args,
                };
                let (x, y) = (traced(a, &data), traced(b, &data));
                let (Some((x, x_looked)), Some((y, y_looked))) = (x, y) else {
                    return Err(format!("{data:x?}: a program the kernel would refuse"));
                };
                if x != y {
                    return Err(format!("{data:x?}: {x:#x} against {y:#x}"));
                }
                // Neither looked past the number and the architecture: no other argument
                // values can decide otherwise.
                if !x_looked && !y_looked {
                    break;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86_64: u32 = 0xc000_003e;

    fn run(prog: &[Insn], data: &Data) -> Option<u32> {
        traced(prog, data).map(|(ret, _)| ret)
    }

    /// A small program in libseccomp's style: arch check, then single-number rules, one with
    /// an argument check.
    fn sample() -> Vec<Insn> {
        vec![
            (LD_ABS, 0, 0, ARCH),
            (JEQ_K, 1, 0, X86_64),
            (RET_K, 0, 0, 0x8000_0000),
            (LD_ABS, 0, 0, NR),
            (JEQ_K, 7, 0, 1),
            (JEQ_K, 6, 0, 2),
            (JEQ_K, 5, 0, 3),
            (JEQ_K, 0, 5, 56),
            (LD_ABS, 0, 0, 16),
            (AND_K, 0, 0, 0x1000_0000),
            (JEQ_K, 0, 1, 0),
            (RET_K, 0, 0, 0x7fff_0000),
            (RET_K, 0, 0, 0x0005_0001),
            (RET_K, 0, 0, 0x0005_0026),
        ]
    }

    #[test]
    fn the_recompiled_program_decides_alike() {
        let prog = sample();
        let tree = compile(&prog, 3, X86_64);
        equivalent(&prog, &tree, X86_64).unwrap();
        let data = |nr, arg0| Data {
            nr,
            arch: X86_64,
            ip: 0,
            args: [arg0, 0, 0, 0, 0, 0],
        };
        assert_eq!(run(&tree, &data(2, 0)), Some(0x0005_0001));
        assert_eq!(run(&tree, &data(56, 0)), Some(0x7fff_0000));
        assert_eq!(run(&tree, &data(56, 0x1000_0000)), Some(0x0005_0001));
        assert_eq!(run(&tree, &data(57, 0)), Some(0x0005_0026));
    }

    #[test]
    fn a_difference_is_found() {
        let prog = sample();
        let mut wrong = compile(&prog, 3, X86_64);
        // Move one range boundary by one: number 3 now falls in the next range.
        let at = wrong
            .iter()
            .position(|&(code, _, _, k)| code == JGE_K && k == 4)
            .expect("a boundary at 4");
        wrong[at].3 = 3;
        assert!(equivalent(&prog, &wrong, X86_64).is_err());
        // An argument check that looks at the wrong bit.
        let mut wrong = compile(&prog, 3, X86_64);
        let at = wrong.iter().position(|&(code, ..)| code == AND_K).unwrap();
        wrong[at].3 = 0x2000_0000;
        assert!(equivalent(&prog, &wrong, X86_64).is_err());
    }
}
