use super::*;

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: busybox\n";

fn messages(text: &str) -> Vec<String> {
    parse_manifests("pods.yaml", text)
        .into_iter()
        .map(|r| match r {
            Ok(pg) => format!("ok {}", pg.metadata.name.unwrap_or_default()),
            Err(e) => e.to_string(),
        })
        .collect()
}

#[test]
fn accepts_pods_and_podgroups() {
    let group = "apiVersion: peapod.dev/v1alpha1\nkind: PodGroup\nmetadata: {name: grp, namespace: team}\nspec:\n  containers: [{name: c, image: busybox}]\n";
    let results = parse_manifests("f", &format!("{POD}---\n{group}"));
    let groups: Vec<PodGroup> = results.into_iter().filter_map(Result::ok).collect();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].metadata.name.as_deref(), Some("web"));
    assert_eq!(groups[0].spec.pod.containers[0].image.as_deref(), Some("busybox"));
    assert_eq!(groups[1].metadata.namespace.as_deref(), Some("team"));
}

#[test]
fn numbers_documents_and_skips_empty_ones() {
    // Document 1 is the comment-only one; the blank text between `...` and `---` is no document.
    let text = format!(
        "---\n# only a comment\n---\n{POD}...\n---\n\n---\nnull\n---\napiVersion: apps/v1\nkind: Deployment\n---\n- 1\n"
    );
    assert_eq!(messages(&text), vec![
        "ok web".to_string(),
        r#"pods.yaml: document 5 (line 18): apiVersion "apps/v1", kind "Deployment" is not supported: expected apiVersion "peapod.dev/v1alpha1" with kind "PodGroup", or apiVersion "v1" with kind "Pod""#.into(),
        "pods.yaml: document 6 (line 21): expected a Kubernetes object (a mapping with apiVersion and kind)".into(),
    ]);
    assert!(messages("").is_empty());
    assert!(messages("# nothing\n\n").is_empty());
    assert!(messages("%YAML 1.2\n---\n").is_empty());
}

#[test]
fn reports_yaml_errors_with_file_line_and_column() {
    let text = format!("{POD}---\napiVersion: v1\nkind: Pod\nspec: [1,\n");
    assert_eq!(
        messages(&text),
        vec![
            "ok web".to_string(),
            "pods.yaml: document 2 (line 10): invalid YAML at line 12, column 7: unclosed bracket '['".into(),
        ]
    );
    assert_eq!(
        messages("a: 1\na: 2\n"),
        vec!["pods.yaml: document 1 (line 1): invalid YAML at line 2, column 1: duplicate mapping key: a"]
    );
}

#[test]
fn reports_unknown_fields_like_strict_decoding() {
    let text = POD.replace(
        "    image: busybox\n",
        "    image: busybox\n    comand: [sh]\n  hostnetwork: true\n",
    );
    let text = format!("{text}extra: 1\n");
    assert_eq!(
        messages(&text),
        vec![
            r#"pods.yaml: document 1 (line 1): strict decoding error: unknown field "extra", unknown field "spec.containers[0].comand", unknown field "spec.hostnetwork""#
        ]
    );
}

#[test]
fn names_the_field_of_a_type_error() {
    let text = POD.replace(
        "    image: busybox\n",
        "    image: busybox\n    ports:\n    - containerPort: http\n",
    );
    assert_eq!(
        messages(&text),
        vec![
            r#"pods.yaml: document 1 (line 1): spec.containers[0].ports[0].containerPort: invalid type: string "http", expected i32"#
        ]
    );
    let text = POD.replace("metadata:\n  name: web\n", "metadata:\n  name: [web]\n");
    assert_eq!(
        messages(&text),
        vec!["pods.yaml: document 1 (line 1): metadata.name: invalid type: sequence, expected a string"]
    );
}

#[test]
fn ignores_status_and_tolerates_missing_parts() {
    let text = format!("{POD}status:\n  phase: Running\n  bogus: 1\n");
    let pg = parse_manifests("f", &text).pop().and_then(Result::ok);
    assert!(pg.is_some_and(|pg| pg.status.is_none()));
    let pg = parse_manifests("f", "apiVersion: v1\nkind: Pod\nmetadata: null\n")
        .pop()
        .and_then(Result::ok);
    assert!(pg.is_some_and(|pg| pg.spec.pod.containers.is_empty() && pg.metadata.name.is_none()));
}

#[test]
fn reads_json_lists_and_inline_documents() {
    let json = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j"},
	"spec": {"containers": [{"name": "c", "image": "busybox"}]}}"#;
    assert_eq!(messages(json), vec!["ok j"]);
    assert_eq!(
        messages("{\"apiVersion\": \"v1\",\n \"kind\": \"Pod\""),
        vec![
            "pods.yaml: document 1 (line 1): invalid JSON at line 2, column 14: EOF while parsing an object"
        ]
    );
    let list = format!(
        "apiVersion: v1\nkind: List\nitems:\n- {}\n- {{apiVersion: v1, kind: Service}}\n",
        json.replace('\n', " ")
    );
    assert_eq!(messages(&list), vec![
        "ok j".to_string(),
        r#"pods.yaml: document 1 item 1 (line 1): apiVersion "v1", kind "Service" is not supported: expected apiVersion "peapod.dev/v1alpha1" with kind "PodGroup", or apiVersion "v1" with kind "Pod""#.into(),
    ]);
    let inline = "--- {apiVersion: v1, kind: Pod, metadata: {name: i}, spec: {containers: [{name: c, image: b}]}}\n--- [\n";
    assert_eq!(
        messages(inline),
        vec![
            "ok i".to_string(),
            // Content after `--- ` keeps its place; a document opening with `[` is read as JSON first.
            "pods.yaml: document 2 (line 2): invalid JSON at line 3, column 0: EOF while parsing a list"
                .into(),
        ]
    );
}

#[test]
fn loads_a_directory_sorted_without_dotfiles() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let write = |name: &str, text: &[u8]| std::fs::write(dir.path().join(name), text);
    write("b.yml", POD.replace("web", "b").as_bytes())?;
    write(
        "a.yaml",
        format!("{}---\n{}", POD.replace("web", "a1"), POD.replace("web", "a2")).as_bytes(),
    )?;
    write(
        "c.json",
        br#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c"}, "spec": {"containers": []}}"#,
    )?;
    write(".hidden.yaml", POD.as_bytes())?;
    write("notes.txt", b"not a manifest")?;
    write("d.yaml", b"\xff\xfe")?;
    std::fs::create_dir(dir.path().join("sub.yaml"))?;
    let loaded = load_path(dir.path())?;
    let summary: Vec<(String, String)> = loaded
        .iter()
        .map(|(path, r)| {
            let file = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string();
            let what = match r {
                Ok(pg) => pg.metadata.name.clone().unwrap_or_default(),
                Err(ManifestError::ReadFile { .. }) => "unreadable".into(),
                Err(e) => e.to_string(),
            };
            (file, what)
        })
        .collect();
    let want = [
        ("a.yaml", "a1"),
        ("a.yaml", "a2"),
        ("b.yml", "b"),
        ("c.json", "c"),
        ("d.yaml", "unreadable"),
    ];
    let want: Vec<(String, String)> = want.iter().map(|(f, w)| (f.to_string(), w.to_string())).collect();
    assert_eq!(summary, want);

    let single = load_path(&dir.path().join("b.yml"))?;
    assert_eq!(single.len(), 1);
    let missing = dir.path().join("missing");
    let err = load_path(&missing)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.starts_with(&missing.display().to_string()), "{err}");
    Ok(())
}
