//! What the CI environment says about the code under test: its commit and branch, from the
//! variables GitHub Actions, GitLab CI, Buildkite and Jenkins set.

/// The commit and branch a run tested, when the environment names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revision {
    pub commit: Option<String>,
    pub branch: Option<String>,
}

impl Revision {
    /// From this process's environment.
    pub fn from_env() -> Self {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// From the variables `get` returns; the first non-empty of each list wins.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Self {
        let first = |names: &[&str]| {
            names.iter().find_map(|name| {
                get(name)
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
            })
        };
        Revision {
            commit: first(&[
                "GITHUB_SHA",
                "CI_COMMIT_SHA",
                "BUILDKITE_COMMIT",
                "GIT_COMMIT",
            ]),
            // A pull request's source branch before the ref GitHub tests it as.
            branch: first(&[
                "GITHUB_HEAD_REF",
                "GITHUB_REF_NAME",
                "CI_COMMIT_REF_NAME",
                "BUILDKITE_BRANCH",
                "GIT_BRANCH",
            ]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_first_variable_set() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let github = env(&[
            ("GITHUB_SHA", "abc123"),
            ("GITHUB_HEAD_REF", ""),
            ("GITHUB_REF_NAME", "main"),
        ]);
        assert_eq!(
            Revision::from_lookup(&github),
            Revision {
                commit: Some("abc123".into()),
                branch: Some("main".into())
            }
        );
        let gitlab = env(&[
            ("CI_COMMIT_SHA", "def"),
            ("CI_COMMIT_REF_NAME", "feature/x"),
        ]);
        assert_eq!(
            Revision::from_lookup(&gitlab),
            Revision {
                commit: Some("def".into()),
                branch: Some("feature/x".into())
            }
        );
        assert_eq!(Revision::from_lookup(&env(&[])), Revision::default());
    }
}
