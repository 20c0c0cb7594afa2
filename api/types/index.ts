/**
 * TypeScript types of every API object, derived from `openapi.yaml` through the
 * generated `gen/openapi.d.ts`. Type-only: importing this module loads no code.
 *
 * Kinds (`Container`, `Image`, …) are the generated shapes with `apiVersion`, `kind`
 * and `metadata` made required, as every object read from the API server has them.
 * Their parts (`ContainerSpec`, `ContainerStatus`, …) are the generated shapes as is.
 */
import type { components } from './gen/openapi.d.ts';

type Schemas = components['schemas'];

/** The generated type of any component schema of `openapi.yaml`, by name. */
export type Schema<N extends keyof Schemas> = Schemas[N];

// meta/v1
export type ObjectMeta = Schemas['ObjectMeta'];
export type ListMeta = Schemas['ListMeta'];
export type OwnerReference = Schemas['OwnerReference'];
export type ManagedFieldsEntry = Schemas['ManagedFieldsEntry'];
/** A metav1.Condition. Every berth kind reports `Ready`, `Reconciling` and `Stalled`. */
export type Condition = Schemas['Condition'];
export type ConditionStatus = Condition['status'];
export type Status = Schemas['Status'];
export type StatusDetails = Schemas['StatusDetails'];
export type StatusCause = Schemas['StatusCause'];
export type DeleteOptions = Schemas['DeleteOptions'];
export type Preconditions = Schemas['Preconditions'];

/** Any object as stored and served: apiVersion, kind and metadata are always there. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: unknown;
  status?: unknown;
}

/** A list as served: `items` carry their own apiVersion and kind. */
export interface KubeList<T> {
  apiVersion: string;
  kind: string;
  metadata: ListMeta;
  items: T[];
}

/** A generated kind with the fields every served object has made required. */
export type Stored<T, ApiVersion extends string, Kind extends string> = Omit<T, 'apiVersion' | 'kind' | 'metadata'> & {
  apiVersion: ApiVersion;
  kind: Kind;
  metadata: ObjectMeta;
};

// berth.dev/v1 Container
export type Container = Stored<Schemas['Container'], 'berth.dev/v1', 'Container'>;
export type ContainerList = KubeList<Container>;
export type ContainerSpec = Schemas['ContainerSpec'];
export type ContainerStatus = Schemas['ContainerStatus'];
export type ContainerPhase = NonNullable<ContainerStatus['phase']>;
export type DesiredState = NonNullable<ContainerSpec['state']>;
export type RestartPolicy = NonNullable<ContainerSpec['restartPolicy']>;
export type ImagePullPolicy = NonNullable<ContainerSpec['imagePullPolicy']>;
export type EnvVar = Schemas['EnvVar'];
export type ContainerPort = Schemas['ContainerPort'];
export type ContainerPortStatus = Schemas['ContainerPortStatus'];
export type VolumeMount = Schemas['VolumeMount'];
export type TmpfsMount = Schemas['TmpfsMount'];
export type NetworkAttachment = Schemas['NetworkAttachment'];
export type Healthcheck = Schemas['Healthcheck'];
export type HealthStatus = Schemas['HealthStatus'];
export type ResourceLimits = Schemas['ResourceLimits'];

// berth.dev/v1 Image
export type Image = Stored<Schemas['Image'], 'berth.dev/v1', 'Image'>;
export type ImageList = KubeList<Image>;
export type ImageSpec = Schemas['ImageSpec'];
export type ImageStatus = Schemas['ImageStatus'];
export type ImagePhase = NonNullable<ImageStatus['phase']>;
export type ImageSource = Schemas['ImageSource'];
export type ImageImportSource = Schemas['ImageImportSource'];
export type ImagePullSource = Schemas['ImagePullSource'];
export type ImageBuildSource = Schemas['ImageBuildSource'];
export type ImageCommitSource = Schemas['ImageCommitSource'];
export type ImageConfigChanges = Schemas['ImageConfigChanges'];
export type BuildContext = Schemas['BuildContext'];
export type GitContext = Schemas['GitContext'];
export type ArchiveContext = Schemas['ArchiveContext'];
export type PushTarget = Schemas['PushTarget'];
export type PushedReference = Schemas['PushedReference'];
export type ImageProgress = Schemas['ImageProgress'];

// berth.dev/v1 Volume
export type Volume = Stored<Schemas['Volume'], 'berth.dev/v1', 'Volume'>;
export type VolumeList = KubeList<Volume>;
export type VolumeSpec = Schemas['VolumeSpec'];
export type VolumeStatus = Schemas['VolumeStatus'];

// berth.dev/v1 Network
export type Network = Stored<Schemas['Network'], 'berth.dev/v1', 'Network'>;
export type NetworkList = KubeList<Network>;
export type NetworkSpec = Schemas['NetworkSpec'];
export type NetworkStatus = Schemas['NetworkStatus'];

// berth.dev/v1 Service
export type Service = Stored<Schemas['Service'], 'berth.dev/v1', 'Service'>;
export type ServiceList = KubeList<Service>;
export type ServiceSpec = Schemas['ServiceSpec'];
export type ServiceStatus = Schemas['ServiceStatus'];
export type ContainerTemplate = Schemas['ContainerTemplate'];
export type UpdateConfig = Schemas['UpdateConfig'];
export type Placement = Schemas['Placement'];

// berth.dev/v1 Node
export type Node = Stored<Schemas['Node'], 'berth.dev/v1', 'Node'>;
export type NodeList = KubeList<Node>;
export type NodeSpec = Schemas['NodeSpec'];
export type NodeStatus = Schemas['NodeStatus'];
export type NodeAddress = Schemas['NodeAddress'];
export type NodeRuntime = Schemas['NodeRuntime'];
export type NodeInfo = Schemas['NodeInfo'];

// core/v1
export type Namespace = Stored<Schemas['Namespace'], 'v1', 'Namespace'>;
export type NamespaceList = KubeList<Namespace>;
export type NamespaceSpec = Schemas['NamespaceSpec'];
export type NamespaceStatus = Schemas['NamespaceStatus'];
export type Event = Stored<Schemas['Event'], 'v1', 'Event'>;
export type EventList = KubeList<Event>;
export type ObjectReference = Schemas['ObjectReference'];
export type EventSource = Schemas['EventSource'];
export type EventSeries = Schemas['EventSeries'];
export type Secret = Stored<Schemas['Secret'], 'v1', 'Secret'>;
export type SecretList = KubeList<Secret>;

// coordination.k8s.io/v1
export type Lease = Stored<Schemas['Lease'], 'coordination.k8s.io/v1', 'Lease'>;
export type LeaseList = KubeList<Lease>;
export type LeaseSpec = Schemas['LeaseSpec'];
