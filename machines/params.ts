/**
 * The transition's own event as the params of a named action or guard. Written in the chart as
 * `{ type: 'launchJob', params: fromEvent }`: the event is already narrowed to the transition's
 * type there, so the implementation receives exactly that event and never checks `event.type`.
 */
export const fromEvent = <E>({ event }: { event: E }): E => event;
