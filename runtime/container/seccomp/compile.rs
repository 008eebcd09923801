//! OCI `linux.seccomp` → classic BPF, for the running architecture.
//!
//! seccompiler builds one filter per match action, while an OCI profile
//! mixes actions (Docker's answers ENOSYS to `clone3` and allows the rest).
//! So one profile becomes a stack of filters, relying on the kernel's rule
//! that every installed filter runs and the most restrictive answer wins
//! (KILL > TRAP > ERRNO > TRACE > LOG > ALLOW):
//!
//! - a base filter answers the default action for calls no rule names, and
//!   ALLOW for calls some rule matches;
//! - one filter per other action answers that action for its rules' calls,
//!   and ALLOW otherwise.
//!
//! A call matched by one rule thus gets that rule's action; calls matched by
//! rules of different actions get the strictest of them.

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::{table, SeccompError};

/// Which calls of one syscall number a filter matches.
#[derive(Debug, Clone)]
enum Chain {
    /// Every call.
    All,
    /// Calls matching any of these rules.
    Rules(Vec<SeccompRule>),
}

/// Syscall number → chain, for one filter.
type Matches = BTreeMap<i64, Chain>;

/// Compiles `profile` into BPF programs, in installation order.
pub(super) fn compile_filters(
    profile: &LinuxSeccomp,
    arch: TargetArch,
) -> Result<Vec<BpfProgram>, SeccompError> {
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    let mut any = Matches::new();
    let mut by_action: Vec<(SeccompAction, Matches)> = Vec::new();
    for entry in profile.syscalls().iter().flatten() {
        let act = action(entry.action(), entry.errno_ret())?;
        if act == default {
            continue;
        }
        let name = entry.names().join(",");
        let rules = rules(&name, entry.args().as_deref().unwrap_or_default())?;
        let slot = match by_action.iter().position(|(a, _)| *a == act) {
            Some(i) => i,
            None => {
                by_action.push((act, Matches::new()));
                by_action.len() - 1
            }
        };
        for nr in entry
            .names()
            .iter()
            .filter_map(|n| table::syscall_number(n))
        {
            add(&mut any, nr, rules.clone());
            add(&mut by_action[slot].1, nr, rules.clone());
        }
    }

    let mut filters = Vec::new();
    if default != SeccompAction::Allow {
        filters.push(build(any, default.clone(), SeccompAction::Allow, arch)?);
    }
    for (act, matches) in by_action {
        if act != SeccompAction::Allow && !matches.is_empty() {
            filters.push(build(matches, SeccompAction::Allow, act, arch)?);
        }
    }
    Ok(filters)
}

/// The seccompiler action for an OCI action and its `errnoRet`.
fn action(act: LinuxSeccompAction, errno: Option<u32>) -> Result<SeccompAction, SeccompError> {
    // The runtime spec: errnoRet defaults to EPERM.
    let errno = errno.unwrap_or(libc::EPERM as u32);
    Ok(match act {
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActErrno => SeccompAction::Errno(errno),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SeccompAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        LinuxSeccompAction::ScmpActTrace => SeccompAction::Trace(errno),
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::UnsupportedAction {
                action: act.to_string(),
            })
        }
    })
}

/// The rules of one OCI entry: `None` when it has no argument conditions.
///
/// Conditions are ANDed, except that, like runc, when two conditions test
/// the same argument each becomes a rule of its own (ORed): libseccomp
/// cannot AND two conditions on one argument.
fn rules(name: &str, args: &[LinuxSeccompArg]) -> Result<Option<Vec<SeccompRule>>, SeccompError> {
    if args.is_empty() {
        return Ok(None);
    }
    let conds = args
        .iter()
        .map(|a| condition(name, a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = [false; 6];
    let repeated = args
        .iter()
        .any(|a| std::mem::replace(&mut seen[a.index().min(5)], true));
    let grouped = if repeated {
        conds.into_iter().map(|c| vec![c]).collect()
    } else {
        vec![conds]
    };
    let rules = grouped
        .into_iter()
        .map(|c| SeccompRule::new(c).map_err(|source| backend(name, source)))
        .collect::<Result<_, _>>()?;
    Ok(Some(rules))
}

/// One OCI argument test as a 64-bit seccompiler condition (libseccomp,
/// hence Docker, compares whole 64-bit arguments).
fn condition(name: &str, arg: &LinuxSeccompArg) -> Result<SeccompCondition, SeccompError> {
    let index = u8::try_from(arg.index())
        .ok()
        .filter(|i| *i < 6)
        .ok_or_else(|| SeccompError::ArgIndex {
            syscall: name.to_owned(),
            index: arg.index(),
        })?;
    let (op, value) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, arg.value()),
        // (arg & value) == valueTwo
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            SeccompCmpOp::MaskedEq(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
        .map_err(|source| backend(name, source))
}

/// Adds rules for `nr`; an unconditional match absorbs any rules.
fn add(matches: &mut Matches, nr: i64, rules: Option<Vec<SeccompRule>>) {
    let chain = matches
        .entry(nr)
        .or_insert_with(|| Chain::Rules(Vec::new()));
    match (chain, rules) {
        (Chain::All, _) => {}
        (chain, None) => *chain = Chain::All,
        (Chain::Rules(have), Some(new)) => have.extend(new),
    }
}

fn build(
    matches: Matches,
    mismatch: SeccompAction,
    on_match: SeccompAction,
    arch: TargetArch,
) -> Result<BpfProgram, SeccompError> {
    let rules = matches
        .into_iter()
        .map(|(nr, chain)| match chain {
            Chain::All => (nr, Vec::new()),
            Chain::Rules(rules) => (nr, rules),
        })
        .collect();
    let filter = SeccompFilter::new(rules, mismatch, on_match, arch)
        .map_err(|source| backend("filter", source))?;
    filter
        .try_into()
        .map_err(|source| backend("filter", source))
}

fn backend(syscall: &str, source: seccompiler::BackendError) -> SeccompError {
    SeccompError::Backend {
        syscall: syscall.to_owned(),
        source,
    }
}
