use super::*;

fn id(kind: &str, name: &str) -> ObjectId {
    ObjectId {
        api_version: "apps/v1".into(),
        kind: kind.into(),
        namespace: "apps".into(),
        name: name.into(),
    }
}

fn change(old: &str, new: &str) -> Change {
    Change {
        old_value: old.into(),
        new_value: new.into(),
        setter: "flux-system:app".into(),
    }
}

/// Two files, listed out of order, with objects whose keys sort differently by kind and name.
fn changes() -> FileChanges {
    BTreeMap::from([
        (
            "apps/web.yaml".to_owned(),
            vec![
                (id("Deployment", "web"), change("app:1", "app:2")),
                (id("CronJob", "report"), change("job:1", "job:2")),
            ],
        ),
        (
            "apps/api.yaml".to_owned(),
            vec![(id("Deployment", "api"), change("api:1", "api:2"))],
        ),
    ])
}

fn render_default(template: &str) -> String {
    let values = BTreeMap::from([("env".to_owned(), "prod".to_owned())]);
    render(template, "flux-system", "auto", &changes(), &values).unwrap()
}

/// The template of Flux's ImageUpdateAutomation documentation, as users copy it.
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

/// Go's output; `{{ end -}}` trims the blank line before "Objects:".
#[test]
fn flux_documented_template_renders_as_go_does() {
    let expected = "Automated image update

Automation name: flux-system/auto

Files:
- apps/api.yaml
- apps/web.yaml
Objects:
- CronJob report
  Changes:
    - job:1 -> job:2
- Deployment api
  Changes:
    - api:1 -> api:2
- Deployment web
  Changes:
    - app:1 -> app:2
";
    assert_eq!(render_default(FLUX_DOCUMENTED), expected);
}

#[test]
fn object_keys_have_every_identifier_field_and_print_as_go_structs() {
    let template = "{{ range $r, $c := .Changed.Objects }}{{ $r.APIVersion }},{{ $r.Namespace }};{{ end }}|{{ range $r, $_ := .Changed.Objects }}{{ $r }}{{ end }}";
    assert_eq!(
        render_default(template),
        "apps/v1,apps;apps/v1,apps;apps/v1,apps;|{{{apps/v1 CronJob} {report apps}}}{{{apps/v1 Deployment} {api apps}}}{{{apps/v1 Deployment} {web apps}}}"
    );
    let nested = "{{ range $file, $objects := .Changed.FileChanges }}{{ $file }}:{{ range $o, $_ := $objects }} {{ $o.Kind }}/{{ $o.Name }}{{ end }};{{ end }}";
    assert_eq!(
        render_default(nested),
        "apps/api.yaml: Deployment/api;apps/web.yaml: CronJob/report Deployment/web;"
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
    assert_eq!(render_default(template), "xxx");
}

#[test]
fn sprig_functions_and_values() {
    let template = "{{ .Values.env | upper }} {{ .Values.missing | default \"dev\" }} {{ \"a-b\" | replace \"-\" \"_\" }} {{ list \"b\" \"a\" | sortAlpha | join \",\" }} {{ \"hello world\" | title | trunc 7 }} {{ len .Changed.Changes }} {{ \"x\" | quote }}";
    assert_eq!(render_default(template), "PROD dev a_b a,b Hello W 3 \"x\"");
    let simple = "{{range .Changed.Changes}}{{print .OldValue}} -> {{println .NewValue}}{{end}}";
    assert_eq!(
        render_default(simple),
        "api:1 -> api:2\napp:1 -> app:2\njob:1 -> job:2\n"
    );
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
