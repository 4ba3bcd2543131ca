/** `WorkerPermissions`: what the agent participant may do in the room, checked at construction. */
import { InvalidOptionError } from '../errors.ts';
import { bool } from './checks.ts';

/** Track sources an agent may publish (mirrors LiveKit's `TrackSource`). */
export type TrackSourceName = 'camera' | 'microphone' | 'screen_share' | 'screen_share_audio';

/** Fields of `WorkerPermissions`; all optional, with LiveKit's defaults. */
export interface WorkerPermissionsInit {
  canPublish?: boolean;
  canSubscribe?: boolean;
  canPublishData?: boolean;
  canUpdateMetadata?: boolean;
  /** Sources the agent may publish; empty means all. */
  canPublishSources?: TrackSourceName[];
  /** A hidden agent is invisible to other participants (and so cannot publish). */
  hidden?: boolean;
}

/** What the agent participant may do in the room; sent to the server at registration. */
export class WorkerPermissions {
  readonly canPublish: boolean;
  readonly canSubscribe: boolean;
  readonly canPublishData: boolean;
  readonly canUpdateMetadata: boolean;
  readonly canPublishSources: readonly TrackSourceName[];
  readonly hidden: boolean;

  constructor(init: WorkerPermissionsInit = {}) {
    this.canPublish = bool('permissions.canPublish', init.canPublish, true);
    this.canSubscribe = bool('permissions.canSubscribe', init.canSubscribe, true);
    this.canPublishData = bool('permissions.canPublishData', init.canPublishData, true);
    this.canUpdateMetadata = bool('permissions.canUpdateMetadata', init.canUpdateMetadata, true);
    this.hidden = bool('permissions.hidden', init.hidden, false);
    const sources = init.canPublishSources ?? [];
    if (!Array.isArray(sources)) {
      throw new InvalidOptionError('permissions.canPublishSources', 'must be an array');
    }
    for (const s of sources) {
      if (!TRACK_SOURCES.includes(s)) {
        throw new InvalidOptionError(
          'permissions.canPublishSources',
          `unknown source ${JSON.stringify(s)} (expected one of ${TRACK_SOURCES.join(', ')})`,
        );
      }
    }
    this.canPublishSources = Object.freeze([...sources]);
    Object.freeze(this);
  }
}

const TRACK_SOURCES: readonly TrackSourceName[] = [
  'camera',
  'microphone',
  'screen_share',
  'screen_share_audio',
];
