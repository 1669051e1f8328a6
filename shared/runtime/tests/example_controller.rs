//! The `greeting` example controller against a real kube-apiserver from `sluice-e2e`: it becomes
//! Ready with its ConfigMap written, follows spec changes, pauses while suspended, stalls on a
//! foreign ConfigMap, and releases its finalizer on deletion after cleaning up.

#[path = "../examples/greeting/greeting.rs"]
mod greeting;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use greeting::{
    CONFIG_MAP_NOT_OWNED, CONFIG_MAP_WRITTEN, CONTROLLER_NAME, Greeting, GreetingReconciler,
    GreetingSpec, MESSAGE_KEY,
};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::wait::{Condition, await_condition, conditions};
use kube::{Api, Client, CustomResourceExt, Resource, ResourceExt};
use serde_json::json;
use sluice_api::FluxObject;
use sluice_api::meta::FINALIZER;
use sluice_api::meta::condition_type::{READY, STALLED};
use sluice_e2e::ControlPlane;
use sluice_runtime::{RuntimeContext, RuntimeFlags, Shutdown, lifecycle};

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Parser)]
struct TestCommand {
    #[command(flatten)]
    flags: RuntimeFlags,
}

/// The example controller watching a namespace of its own, with the Greeting CRD installed;
/// it stops when dropped.
struct Example {
    runtime: RuntimeContext,
    greetings: Api<Greeting>,
    config_maps: Api<ConfigMap>,
    shutdown: Shutdown,
}

impl Drop for Example {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

impl Example {
    async fn start(prefix: &str) -> Result<Self> {
        let control_plane = ControlPlane::shared().await?;
        let client = control_plane.client().await?;
        let namespace = control_plane.namespace(prefix).await?;
        install_crd(&client).await?;
        let flags = TestCommand::parse_from([
            "greeting-controller",
            "--watch-all-namespaces=false",
            &format!("--runtime-namespace={namespace}"),
            "--min-retry-delay=200ms",
            "--max-retry-delay=2s",
        ])
        .flags;
        let shutdown = Shutdown::new();
        let (runtime, _tasks) =
            RuntimeContext::with_client(CONTROLLER_NAME, client.clone(), flags, shutdown.clone())?;
        let controller = runtime.clone();
        tokio::spawn(async move { greeting::run(&controller).await });
        Ok(Self {
            greetings: Api::namespaced(client.clone(), &namespace),
            config_maps: Api::namespaced(client, &namespace),
            runtime,
            shutdown,
        })
    }

    /// Creates Greeting `name` and waits until its `Ready` is `ready` at its generation.
    async fn create(&self, name: &str, message: &str, ready: &'static str) -> Result<Greeting> {
        self.greetings
            .create(&PostParams::default(), &greeting(name, message))
            .await?;
        wait_for(self.greetings.clone(), name, ready_is(ready))
            .await?
            .with_context(|| format!("Greeting {name} exists"))
    }

    /// Deletes `greeting` and waits until it is gone, i.e. its finalizer was released.
    async fn delete(&self, greeting: &Greeting) -> Result<()> {
        let name = greeting.name_any();
        let uid = greeting.uid().unwrap_or_default();
        self.greetings
            .delete(&name, &DeleteParams::default())
            .await?;
        wait_for(self.greetings.clone(), &name, conditions::is_deleted(&uid)).await?;
        Ok(())
    }
}

async fn install_crd(client: &Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = Greeting::crd();
    let name = crd.name_any();
    let params = PatchParams::apply("sluice-runtime-test").force();
    crds.patch(&name, &params, &Patch::Apply(&crd)).await?;
    wait_for(crds, &name, conditions::is_crd_established()).await?;
    Ok(())
}

/// Waits until `condition` holds for object `name`; `None` when it holds for a deleted object.
async fn wait_for<K>(api: Api<K>, name: &str, condition: impl Condition<K>) -> Result<Option<K>>
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
{
    let kind = K::kind(&()).into_owned();
    tokio::time::timeout(TIMEOUT, await_condition(api, name, condition))
        .await
        .with_context(|| format!("timed out after {TIMEOUT:?} waiting for {kind} {name}"))?
        .with_context(|| format!("watching {kind} {name}"))
}

fn greeting(name: &str, message: &str) -> Greeting {
    let spec = GreetingSpec {
        interval: "10m".to_owned(),
        suspend: false,
        message: message.to_owned(),
    };
    Greeting::new(name, spec)
}

/// Ready with `status` at the object's current generation.
fn ready_is(status: &'static str) -> impl Condition<Greeting> {
    move |greeting: Option<&Greeting>| {
        greeting.is_some_and(|greeting| {
            greeting.observed_generation() == greeting.meta().generation
                && greeting
                    .condition(READY)
                    .is_some_and(|ready| ready.status == status)
        })
    }
}

fn message_is(expected: &'static str) -> impl Condition<ConfigMap> {
    move |config_map: Option<&ConfigMap>| {
        config_map
            .and_then(|config_map| config_map.data.as_ref()?.get(MESSAGE_KEY))
            .is_some_and(|message| message == expected)
    }
}

#[tokio::test]
async fn greeting_becomes_ready_follows_changes_honours_suspend_and_cleans_up() -> Result<()> {
    let example = Example::start("greeting").await?;
    let (greetings, config_maps) = (&example.greetings, &example.config_maps);
    let ready = example.create("hello", "Hello", "True").await?;
    let written = ready
        .condition(CONFIG_MAP_WRITTEN)
        .context("ConfigMapWritten")?;
    assert_eq!(written.status, "True");
    assert_eq!(
        ready.condition(READY).map(|c| c.message.as_str()),
        Some("wrote the message to ConfigMap hello")
    );
    assert!(ready.finalizers().iter().any(|f| f == FINALIZER));
    let config_map = wait_for(config_maps.clone(), "hello", message_is("Hello"))
        .await?
        .context("ConfigMap hello exists")?;
    assert_eq!(
        config_map.owner_references()[0].uid,
        ready.uid().unwrap_or_default()
    );

    let change = json!({"spec": {"message": "Hello again"}});
    greetings
        .patch("hello", &PatchParams::default(), &Patch::Merge(&change))
        .await?;
    wait_for(config_maps.clone(), "hello", message_is("Hello again")).await?;
    wait_for(greetings.clone(), "hello", ready_is("True")).await?;

    let suspend = json!({"spec": {"suspend": true, "message": "Not now"}});
    greetings
        .patch("hello", &PatchParams::default(), &Patch::Merge(&suspend))
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        message_is("Hello again").matches_object(config_maps.get_opt("hello").await?.as_ref()),
        "a suspended Greeting leaves its ConfigMap alone"
    );
    let resume = json!({"spec": {"suspend": false}});
    greetings
        .patch("hello", &PatchParams::default(), &Patch::Merge(&resume))
        .await?;
    wait_for(config_maps.clone(), "hello", message_is("Not now")).await?;

    example.delete(&ready).await?;
    assert!(
        config_maps.get_opt("hello").await?.is_none(),
        "cleanup deletes the ConfigMap before the finalizer is released"
    );
    Ok(())
}

#[tokio::test]
async fn a_reconcile_handed_a_stale_cached_copy_works_on_the_stored_object() -> Result<()> {
    let example = Example::start("greeting-stale").await?;
    let (greetings, config_maps) = (&example.greetings, &example.config_maps);
    let stale = example.create("hello", "Hello", "True").await?;
    let change = json!({"spec": {"message": "Hello again"}});
    greetings
        .patch("hello", &PatchParams::default(), &Patch::Merge(&change))
        .await?;
    wait_for(config_maps.clone(), "hello", message_is("Hello again")).await?;
    let observed_generation = |g: &Greeting| g.status.as_ref()?.observed_generation;
    let current = wait_for(greetings.clone(), "hello", move |g: Option<&Greeting>| {
        g.and_then(observed_generation) == Some(2)
    })
    .await?
    .context("Greeting hello")?;
    example.shutdown.trigger();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A cache that missed the change after a watch error hands out the generation-1 copy to
    // the process that wrote the newer status.
    let reconciler = Arc::new(GreetingReconciler::new(example.runtime.clone()));
    lifecycle::reconcile(Arc::new(stale), reconciler).await?;
    let after = greetings.get("hello").await?;
    assert_eq!(observed_generation(&after), Some(2), "status not set back");
    assert_eq!(after.condition(READY), current.condition(READY));
    assert!(
        message_is("Hello again").matches_object(config_maps.get_opt("hello").await?.as_ref()),
        "the ConfigMap keeps the current message"
    );
    Ok(())
}

#[tokio::test]
async fn greeting_stalls_on_a_foreign_config_map_and_leaves_it_alone() -> Result<()> {
    let example = Example::start("greeting-taken").await?;
    let config_maps = &example.config_maps;
    let foreign = ConfigMap {
        metadata: ObjectMeta {
            name: Some("taken".to_owned()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    config_maps.create(&PostParams::default(), &foreign).await?;
    let stalled = example.create("taken", "Hello", "False").await?;
    let ready = stalled.condition(READY).context("Ready")?;
    assert_eq!(ready.reason, CONFIG_MAP_NOT_OWNED);
    assert!(
        ready
            .message
            .contains("delete that ConfigMap or rename the Greeting")
    );
    assert_eq!(
        stalled.condition(STALLED).map(|c| c.status.as_str()),
        Some("True")
    );

    example.delete(&stalled).await?;
    assert!(
        config_maps.get_opt("taken").await?.is_some(),
        "a ConfigMap the Greeting does not own survives its deletion"
    );
    Ok(())
}
