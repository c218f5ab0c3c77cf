//! What the CI environment says about a run: the commit and branch it tested (for the per-test
//! history) and the pipeline, job and repository as OpenTelemetry `cicd.*` and `vcs.*` resource
//! attributes (for traces), from the variables GitHub Actions, GitLab CI, Buildkite and Jenkins
//! set.

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

/// The OpenTelemetry semantic-convention attributes of the CI pipeline run, its job and the
/// repository under test, from GitHub Actions or GitLab CI variables; empty elsewhere. Each
/// attribute is set only when its variables are.
pub fn resource_attributes(get: &dyn Fn(&str) -> Option<String>) -> Vec<(&'static str, String)> {
    let var = |name: &str| {
        get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut out = Vec::new();
    let mut put = |key: &'static str, value: Option<String>| {
        if let Some(value) = value {
            out.push((key, value));
        }
    };
    if var("GITHUB_ACTIONS").is_some() {
        let server = var("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".to_owned());
        let repository = var("GITHUB_REPOSITORY");
        let run_id = var("GITHUB_RUN_ID");
        let repository_url = repository.as_ref().map(|r| format!("{server}/{r}"));
        put("cicd.pipeline.name", var("GITHUB_WORKFLOW"));
        put(
            "cicd.pipeline.run.url.full",
            repository_url
                .as_ref()
                .zip(run_id.as_ref())
                .map(|(url, id)| match var("GITHUB_RUN_ATTEMPT") {
                    Some(attempt) => format!("{url}/actions/runs/{id}/attempts/{attempt}"),
                    None => format!("{url}/actions/runs/{id}"),
                }),
        );
        put("cicd.pipeline.run.id", run_id);
        put("cicd.pipeline.task.name", var("GITHUB_JOB"));
        put(
            "vcs.repository.name",
            repository
                .as_deref()
                .and_then(|r| r.rsplit('/').next())
                .map(str::to_owned),
        );
        put("vcs.repository.url.full", repository_url);
        put(
            "vcs.ref.head.name",
            var("GITHUB_HEAD_REF").or_else(|| var("GITHUB_REF_NAME")),
        );
        put("vcs.ref.head.revision", var("GITHUB_SHA"));
        put("vcs.ref.head.type", var("GITHUB_REF_TYPE"));
        put("vcs.ref.base.name", var("GITHUB_BASE_REF"));
        // A pull request's run is on `refs/pull/<number>/merge`.
        put(
            "vcs.change.id",
            var("GITHUB_REF").and_then(|r| {
                r.strip_prefix("refs/pull/")
                    .and_then(|rest| rest.split('/').next())
                    .map(str::to_owned)
            }),
        );
    } else if var("GITLAB_CI").is_some() {
        put(
            "cicd.pipeline.name",
            var("CI_PIPELINE_NAME").or_else(|| var("CI_PROJECT_PATH")),
        );
        put("cicd.pipeline.run.id", var("CI_PIPELINE_ID"));
        put("cicd.pipeline.run.url.full", var("CI_PIPELINE_URL"));
        put("cicd.pipeline.task.name", var("CI_JOB_NAME"));
        put("cicd.pipeline.task.run.id", var("CI_JOB_ID"));
        put("cicd.pipeline.task.run.url.full", var("CI_JOB_URL"));
        put("vcs.repository.name", var("CI_PROJECT_NAME"));
        put("vcs.repository.url.full", var("CI_PROJECT_URL"));
        put(
            "vcs.ref.head.name",
            var("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME").or_else(|| var("CI_COMMIT_REF_NAME")),
        );
        put("vcs.ref.head.revision", var("CI_COMMIT_SHA"));
        put(
            "vcs.ref.head.type",
            Some(
                if var("CI_COMMIT_TAG").is_some() {
                    "tag"
                } else {
                    "branch"
                }
                .to_owned(),
            ),
        );
        put(
            "vcs.ref.base.name",
            var("CI_MERGE_REQUEST_TARGET_BRANCH_NAME"),
        );
        put("vcs.change.id", var("CI_MERGE_REQUEST_IID"));
    }
    out
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

    #[test]
    fn pipeline_and_repository_attributes() {
        let lookup = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        // The variables GitHub Actions sets in a pull request's job (docs.github.com,
        // "Variables reference").
        let github = lookup(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "octo-org/octo-repo"),
            ("GITHUB_RUN_ID", "1658821493"),
            ("GITHUB_RUN_ATTEMPT", "2"),
            ("GITHUB_WORKFLOW", "CI"),
            ("GITHUB_JOB", "test"),
            ("GITHUB_SHA", "ffac537e6cbbf934b08745a378932722df287a53"),
            ("GITHUB_REF", "refs/pull/42/merge"),
            ("GITHUB_REF_NAME", "42/merge"),
            ("GITHUB_REF_TYPE", "branch"),
            ("GITHUB_HEAD_REF", "feature-a"),
            ("GITHUB_BASE_REF", "main"),
        ]);
        insta::assert_debug_snapshot!(resource_attributes(&github));
        let gitlab = lookup(&[
            ("GITLAB_CI", "true"),
            ("CI_PIPELINE_ID", "1000"),
            (
                "CI_PIPELINE_URL",
                "https://gitlab.example.com/g/p/-/pipelines/1000",
            ),
            ("CI_PROJECT_PATH", "g/p"),
            ("CI_PROJECT_NAME", "p"),
            ("CI_PROJECT_URL", "https://gitlab.example.com/g/p"),
            ("CI_JOB_NAME", "rspec 1/2"),
            ("CI_JOB_ID", "2000"),
            ("CI_JOB_URL", "https://gitlab.example.com/g/p/-/jobs/2000"),
            ("CI_COMMIT_SHA", "abc"),
            ("CI_COMMIT_REF_NAME", "main"),
        ]);
        insta::assert_debug_snapshot!(resource_attributes(&gitlab));
        assert!(resource_attributes(&lookup(&[("GITHUB_SHA", "abc")])).is_empty());
    }
}
