use super::*;

fn id(api_version: &str, kind: &str, namespace: &str, name: &str) -> ObjectId {
    ObjectId {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

fn change(old: &str, new: &str, setter: &str) -> Change {
    Change {
        old_value: old.into(),
        new_value: new.into(),
        setter: setter.into(),
    }
}

/// Three files whose objects sort differently by API version, kind and name; the same data
/// as the Go program that produced the expected outputs below (see `GO_REFERENCE`).
fn changes() -> FileChanges {
    let web = id("apps/v1", "Deployment", "apps", "web");
    BTreeMap::from([
        (
            "apps/web.yaml".to_owned(),
            vec![
                (
                    web.clone(),
                    change(
                        "ghcr.io/org/web:5.0.2",
                        "ghcr.io/org/web:5.0.3",
                        "flux-system:web",
                    ),
                ),
                (
                    id("batch/v1", "CronJob", "apps", "Report"),
                    change("2.0", "2.1", "flux-system:report:tag"),
                ),
                (
                    web,
                    change(
                        "ghcr.io/org/proxy:1.0",
                        "ghcr.io/org/proxy:1.1",
                        "flux-system:proxy",
                    ),
                ),
            ],
        ),
        (
            "apps/api.yaml".to_owned(),
            vec![(
                id("apps/v1", "Deployment", "apps", "api"),
                change(
                    "ghcr.io/org/api:1.0",
                    "ghcr.io/org/api:1.1",
                    "flux-system:api",
                ),
            )],
        ),
        (
            "kustomization.yaml".to_owned(),
            vec![(
                id("kustomize.config.k8s.io/v1beta1", "Kustomization", "", ""),
                change("5.0.2", "5.0.3", "flux-system:web:tag"),
            )],
        ),
    ])
}

fn render_default(template: &str) -> String {
    let values = BTreeMap::from([("cluster".to_owned(), "prod".to_owned())]);
    render(template, "flux-system", "auto", &changes(), &values).unwrap()
}

// GO_REFERENCE: the expected texts of the Flux templates below were produced by Go 1.26's
// `text/template` executing each template 300 times over the same changes in a struct-typed
// `TemplateData` shaped as image-automation-controller's (`update.Result` with its `Changes()`
// and `Objects()` methods, `ObjectIdentifier` embedding kyaml's `ResourceIdentifier`,
// `types.NamespacedName`), with Sprig's `lower` and `contains`. Every run gave the same text.

/// The template of Flux's ImageUpdateAutomation documentation ("Message Template").
const FLUX_DOCUMENTED: &str = "Automated image update

Automation name: {{ .AutomationObject }}

Files:
{{ range $filename, $_ := .Changed.FileChanges -}}
- {{ $filename }}
{{ end -}}

Objects:
{{ range $resource, $changes := .Changed.Objects -}}
- {{ $resource.Kind }} {{ $resource.Name }}
  Changes:
{{- range $_, $change := $changes }}
    - {{ $change.OldValue }} -> {{ $change.NewValue }}
{{ end -}}
{{ end -}}
";

/// Flux documentation's second example, with template functions.
const FLUX_DOCUMENTED_FUNCTIONS: &str = r#"Automated image update

Automation name: {{ .AutomationObject }}

Files:
{{ range $filename, $_ := .Changed.FileChanges -}}
- {{ $filename }}
{{ end -}}

Objects:
{{ range $resource, $changes := .Changed.Objects -}}
- {{ $resource.Kind | lower }} {{ $resource.Name | lower }}
  Changes:
{{- range $_, $change := $changes }}
  {{ if contains "5.0.3" $change.NewValue -}}
    - {{ $change.OldValue }} -> {{ $change.NewValue }}
  {{ else -}}
    [skip ci] wrong image
  {{ end -}}
{{ end -}}
{{ end -}}
"#;

#[test]
fn flux_documented_template_renders_as_go_does() {
    // Go's output (GO_REFERENCE); objects in Go's struct key order: APIVersion, Kind, Name.
    let expected = "Automated image update\n\nAutomation name: flux-system/auto\n\nFiles:\n- apps/api.yaml\n- apps/web.yaml\n- kustomization.yaml\nObjects:\n- Deployment api\n  Changes:\n    - ghcr.io/org/api:1.0 -> ghcr.io/org/api:1.1\n- Deployment web\n  Changes:\n    - ghcr.io/org/web:5.0.2 -> ghcr.io/org/web:5.0.3\n\n    - ghcr.io/org/proxy:1.0 -> ghcr.io/org/proxy:1.1\n- CronJob Report\n  Changes:\n    - 2.0 -> 2.1\n- Kustomization \n  Changes:\n    - 5.0.2 -> 5.0.3\n";
    assert_eq!(render_default(FLUX_DOCUMENTED), expected);
}

#[test]
fn flux_documented_template_with_functions_renders_as_go_does() {
    // Go's output (GO_REFERENCE).
    let expected = "Automated image update\n\nAutomation name: flux-system/auto\n\nFiles:\n- apps/api.yaml\n- apps/web.yaml\n- kustomization.yaml\nObjects:\n- deployment api\n  Changes:\n  [skip ci] wrong image\n  - deployment web\n  Changes:\n  - ghcr.io/org/web:5.0.2 -> ghcr.io/org/web:5.0.3\n  \n  [skip ci] wrong image\n  - cronjob report\n  Changes:\n  [skip ci] wrong image\n  - kustomization \n  Changes:\n  - 5.0.2 -> 5.0.3\n  ";
    assert_eq!(render_default(FLUX_DOCUMENTED_FUNCTIONS), expected);
}

#[test]
fn flux_documented_values_template_renders_as_go_does() {
    assert_eq!(
        render_default("Automated image update by Flux for cluster {{ .Values.cluster }}."),
        "Automated image update by Flux for cluster prod."
    );
}

#[test]
fn renders_are_identical_across_runs() {
    let first = render_default(FLUX_DOCUMENTED);
    for _ in 0..20 {
        assert_eq!(render_default(FLUX_DOCUMENTED), first);
    }
}

#[test]
fn changes_lists_each_distinct_change_once_in_sorted_order() {
    // Go's `Result.Changes()` ranges over maps, so its order differs from run to run (six
    // orders in 300 runs of GO_REFERENCE); the lines are the same. Sluice's order: files by
    // path, objects in Go's key order, changes in file order.
    let guide = "{{range .Changed.Changes}}{{print .OldValue}} -> {{println .NewValue}}{{end}}";
    assert_eq!(
        render_default(guide),
        "ghcr.io/org/api:1.0 -> ghcr.io/org/api:1.1\nghcr.io/org/web:5.0.2 -> ghcr.io/org/web:5.0.3\nghcr.io/org/proxy:1.0 -> ghcr.io/org/proxy:1.1\n2.0 -> 2.1\n5.0.2 -> 5.0.3\n"
    );
    let web = id("apps/v1", "Deployment", "apps", "web");
    let same = change("a:1", "a:2", "ns:a");
    let duplicated = BTreeMap::from([
        ("a.yaml".to_owned(), vec![(web.clone(), same.clone())]),
        ("b.yaml".to_owned(), vec![(web, same)]),
    ]);
    let rendered = render(guide, "ns", "auto", &duplicated, &BTreeMap::new()).unwrap();
    assert_eq!(rendered, "a:1 -> a:2\n");
}

#[test]
fn objects_changed_in_two_files_have_the_last_files_changes() {
    // Go's `Result.Objects()` assigns each file's changes in turn: the last file visited wins.
    let values = id("", "", "", "");
    let two_files = BTreeMap::from([
        (
            "a/values.yaml".to_owned(),
            vec![(values.clone(), change("a:1", "a:2", "ns:a"))],
        ),
        (
            "b/values.yaml".to_owned(),
            vec![(values, change("b:1", "b:2", "ns:b"))],
        ),
    ]);
    let template = "{{ range $o, $changes := .Changed.Objects }}{{ range $changes }}{{ .NewValue }};{{ end }}{{ end }}|{{ range $f, $objects := .Changed.FileChanges }}{{ $f }}:{{ len $objects }};{{ end }}";
    let rendered = render(template, "ns", "auto", &two_files, &BTreeMap::new()).unwrap();
    assert_eq!(rendered, "b:2;|a/values.yaml:1;b/values.yaml:1;");
}

#[test]
fn object_keys_print_and_sort_as_go_structs() {
    // Go's output (GO_REFERENCE), missing map keys printing `<no value>`.
    let template = r#"{{ .AutomationObject }} {{ .AutomationObject.Name }} [{{ .Values.missing }}] {{ range $r, $c := .Changed.Objects }}{{ $r }} {{ printf "%v|%s" $r $r.Kind }} {{ len $c }};{{ end }}"#;
    assert_eq!(
        render_default(template),
        "flux-system/auto auto [<no value>] {{{apps/v1 Deployment} {api apps}}} {{{apps/v1 Deployment} {api apps}}}|Deployment 1;{{{apps/v1 Deployment} {web apps}}} {{{apps/v1 Deployment} {web apps}}}|Deployment 2;{{{batch/v1 CronJob} {Report apps}}} {{{batch/v1 CronJob} {Report apps}}}|CronJob 1;{{{kustomize.config.k8s.io/v1beta1 Kustomization} { }}} {{{kustomize.config.k8s.io/v1beta1 Kustomization} { }}}|Kustomization 1;"
    );
    // Go's output (GO_REFERENCE).
    let nested = "{{ range $f, $objs := .Changed.FileChanges }}{{ $f }}:{{ range $o, $cs := $objs }} {{ $o.APIVersion }}/{{ $o.Kind }}/{{ $o.Namespace }}/{{ $o.Name }}={{ range $cs }}{{ .Setter }},{{ end }}{{ end }}\n{{ end }}";
    assert_eq!(
        render_default(nested),
        "apps/api.yaml: apps/v1/Deployment/apps/api=flux-system:api,\napps/web.yaml: apps/v1/Deployment/apps/web=flux-system:web,flux-system:proxy, batch/v1/CronJob/apps/Report=flux-system:report:tag,\nkustomization.yaml: kustomize.config.k8s.io/v1beta1/Kustomization//=flux-system:web:tag,\n"
    );
}

#[test]
fn automation_object_prints_as_namespaced_name_and_has_fields() {
    assert_eq!(
        render_default(
            "{{ .AutomationObject }} {{ .AutomationObject.Name }} {{ $.AutomationObject.Namespace }} {{ printf \"%s!\" .AutomationObject }}"
        ),
        "flux-system/auto auto flux-system flux-system/auto!"
    );
}

#[test]
fn a_shadowed_key_variable_is_left_alone() {
    let template = "{{ range $r, $_ := .Changed.Objects }}{{ $r := \"x\" }}{{ $r }}{{ end }}";
    assert_eq!(render_default(template), "xxxx");
}

#[test]
fn sprig_functions_and_values() {
    let template = "{{ .Values.cluster | upper }} {{ .Values.missing | default \"dev\" }} {{ \"a-b\" | replace \"-\" \"_\" }} {{ list \"b\" \"a\" | sortAlpha | join \",\" }} {{ \"hello world\" | title | trunc 7 }} {{ len .Changed.Changes }} {{ \"x\" | quote }}";
    assert_eq!(render_default(template), "PROD dev a_b a,b Hello W 5 \"x\"");
}

#[test]
fn unknown_functions_removed_fields_and_syntax_errors_are_refused() {
    assert!(matches!(
        validate("{{ range .Updated.Images }}{{ end }}"),
        Err(TemplateError::RemovedField(".Updated"))
    ));
    assert!(matches!(
        validate("{{ .Changed.ImageResult }}"),
        Err(TemplateError::RemovedField(".Changed.ImageResult"))
    ));
    assert!(validate("{{ .UpdatedAt }}").is_ok());
    assert!(matches!(
        validate("{{ range }"),
        Err(TemplateError::Parse(_))
    ));
    assert!(matches!(
        validate("{{ env \"HOME\" }}"),
        Err(TemplateError::Parse(_))
    ));
}

#[test]
fn output_is_bounded() {
    let template = "{{ range .Changed.Changes }}{{ range .OldValue | len }}{{ repeat 1000000 \"x\" }}{{ end }}{{ end }}";
    let error = render(template, "ns", "a", &changes(), &BTreeMap::new()).unwrap_err();
    assert!(error.to_string().contains("longer than"), "{error}");
}

#[test]
fn comments_break_and_continue_work_as_in_go() {
    let template = "{{/* a comment */}}{{ range $i, $c := .Changed.Changes }}{{ if eq $i 1 }}{{ continue }}{{ end }}{{ if gt $i 2 }}{{ break }}{{ end }}{{ $i }}{{ end }}";
    assert_eq!(render_default(template), "02");
}
