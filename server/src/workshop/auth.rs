//! Who the instructor is: the admin token from the command line, or an
//! instructor account (argon2 password hashes with a random salt each, in
//! the store) logged in with a cookie. Learners have no accounts: their
//! classroom session cookie is who they are.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::http::{header, HeaderMap};

use crate::store::workshops::WorkshopRow;

/// The cookie holding an instructor's login.
pub const COOKIE: &str = "berth_instructor";
/// How long a login lasts.
pub const LOGIN_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Shortest password an account may have.
pub const MIN_PASSWORD: usize = 8;

/// A logged-in instructor; `id` is `None` for the admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instructor {
    pub id: Option<i64>,
    pub name: String,
}

impl Instructor {
    pub fn admin() -> Self {
        Self {
            id: None,
            name: "admin".into(),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.id.is_none()
    }

    /// Whether this instructor runs workshop `w` (the admin runs all).
    pub fn runs(&self, w: &WorkshopRow) -> bool {
        self.is_admin() || w.instructor_id == self.id
    }
}

/// Hashes `password` with argon2id and a fresh random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the stored PHC `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Compares secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Logins by cookie value.
#[derive(Default)]
pub struct Logins {
    map: Mutex<HashMap<String, (Instructor, Instant)>>,
}

impl Logins {
    /// A new login cookie value for `who`.
    pub fn open(&self, who: Instructor) -> String {
        let token = crate::classroom::random_hex(24);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (_, at)| at.elapsed() < LOGIN_LIFETIME);
        map.insert(token.clone(), (who, Instant::now()));
        token
    }

    pub fn close(&self, token: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
    }

    fn get(&self, token: &str) -> Option<Instructor> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(token)
            .filter(|(_, at)| at.elapsed() < LOGIN_LIFETIME)
            .map(|(who, _)| who.clone())
    }

    /// The instructor a request comes from: `Authorization: Bearer <admin
    /// token>` or the login cookie.
    pub fn who(&self, admin_token: Option<&str>, headers: &HeaderMap) -> Option<Instructor> {
        if let (Some(admin), Some(bearer)) = (admin_token, bearer(headers)) {
            if same_secret(admin, bearer) {
                return Some(Instructor::admin());
            }
        }
        self.get(&cookie(headers, COOKIE)?)
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The value of cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_salted_and_verified() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("wrong horse", &a));
        assert!(!verify_password("x", "not a hash"));
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
