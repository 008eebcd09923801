//! Resolving a container's user against its own /etc/passwd and /etc/group.

use std::fs;
use std::path::Path;

/// A resolved user: ids, supplementary groups and home directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn passwd(root: &Path) -> Vec<PasswdEntry> {
    let text = fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
            })
        })
        .collect()
}

/// A `--group-add` entry: a number, or a group name in the filesystem at
/// `root`, with Docker's error for an unknown name.
pub fn group_id(root: &Path, group: &str) -> Result<u32, String> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    groups(root)
        .into_iter()
        .find(|(name, _, _)| name == group)
        .map(|(_, gid, _)| gid)
        .ok_or_else(|| format!("unable to find group {group}: no matching entries in group file"))
}

/// (name, gid, members) of each group.
fn groups(root: &Path) -> Vec<(String, u32, Vec<String>)> {
    let text = fs::read_to_string(root.join("etc/group")).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            let members = f[3]
                .split(',')
                .filter(|m| !m.is_empty())
                .map(String::from)
                .collect();
            Some((f[0].to_string(), f[2].parse().ok()?, members))
        })
        .collect()
}

/// Resolves `spec` (`name`, `uid`, `name:group`, `uid:gid`; `None` = root) in
/// the filesystem at `root`. Errors use Docker's words.
pub fn resolve(root: &Path, spec: Option<&str>) -> Result<ResolvedUser, String> {
    let spec = spec.filter(|s| !s.is_empty()).unwrap_or("0");
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users = passwd(root);
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => users
            .into_iter()
            .find(|e| e.uid == uid)
            .or(Some(PasswdEntry {
                name: String::new(),
                uid,
                // Docker gives a uid without a passwd entry the root group.
                gid: 0,
                home: "/".into(),
            })),
        Err(_) => users.into_iter().find(|e| e.name == user_part),
    };
    let Some(entry) = entry else {
        return Err(format!(
            "unable to find user {user_part}: no matching entries in passwd file"
        ));
    };
    let all_groups = groups(root);
    let gid = match group_part {
        None => entry.gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => all_groups
                .iter()
                .find(|(name, _, _)| name == g)
                .map(|(_, gid, _)| *gid)
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        },
    };
    let groups = if group_part.is_some() || entry.name.is_empty() {
        Vec::new()
    } else {
        all_groups
            .iter()
            .filter(|(_, g, members)| *g != gid && members.contains(&entry.name))
            .map(|(_, g, _)| *g)
            .collect()
    };
    let home = if entry.home.is_empty() {
        "/".into()
    } else {
        entry.home
    };
    Ok(ResolvedUser {
        uid: entry.uid,
        gid,
        groups,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("etc")).unwrap();
        fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\nwww:x:33:33:www:/var/www:/bin/false\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nwww-data:x:33:\nstaff:x:50:www\nnogroup:x:65534:\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn names_numbers_and_groups_resolve_like_docker() {
        let r = root();
        let root_user = resolve(r.path(), None).unwrap();
        assert_eq!(
            (root_user.uid, root_user.gid, root_user.home.as_str()),
            (0, 0, "/root")
        );
        let www = resolve(r.path(), Some("www")).unwrap();
        assert_eq!((www.uid, www.gid, www.groups.clone()), (33, 33, vec![50]));
        let by_number = resolve(r.path(), Some("1234:5678")).unwrap();
        assert_eq!((by_number.uid, by_number.gid), (1234, 5678));
        let named_group = resolve(r.path(), Some("nobody:staff")).unwrap();
        assert_eq!((named_group.uid, named_group.gid), (65534, 50));
    }

    #[test]
    fn unknown_user_or_group_is_dockers_error() {
        let r = root();
        assert_eq!(
            resolve(r.path(), Some("ghost")).unwrap_err(),
            "unable to find user ghost: no matching entries in passwd file"
        );
        assert_eq!(
            resolve(r.path(), Some("root:ghosts")).unwrap_err(),
            "unable to find group ghosts: no matching entries in group file"
        );
    }
}
