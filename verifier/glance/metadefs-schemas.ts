/**
 * The JSON schemas of Glance's metadata definitions (`/v2/schemas/metadefs/{kind}`): written for écluse, served
 * under the names Glance uses (clients look them up by name).
 */
const schema = (name: string, properties: Record<string, unknown>, required: string[] = []) => ({
  name,
  properties,
  ...(required.length ? { required } : {}),
  additionalProperties: false,
});
const str = (description: string) => ({ type: 'string', description });
const times = {
  created_at: { ...str('Date and time of creation'), readOnly: true, format: 'date-time' },
  updated_at: { ...str('Date and time of the last change'), readOnly: true, format: 'date-time' },
};
const namespace = schema(
  'namespace',
  {
    namespace: str('The unique name of the namespace'),
    display_name: str('A name for people'),
    description: str('What the namespace is for'),
    visibility: { type: 'string', enum: ['public', 'private'] },
    protected: { type: 'boolean' },
    owner: str('The project owning the namespace'),
    ...times,
  },
  ['namespace'],
);
const association_ = schema(
  'resource_type_association',
  {
    name: str('A resource type (OS::Glance::Image...)'),
    prefix: str('Prefix of property names for this resource type'),
    properties_target: str('Where the properties apply'),
    ...times,
  },
  ['name'],
);
const object = schema(
  'object',
  {
    name: str('The object name'),
    description: str('What the object is'),
    required: { type: 'array', items: { type: 'string' } },
    properties: { type: 'object' },
    ...times,
  },
  ['name'],
);
const property = schema(
  'property',
  {
    name: str('The property name'),
    title: str('A title for people'),
    type: str('The JSON type'),
    description: str('What the property means'),
  },
  ['name', 'title', 'type'],
);
const tag = schema('tag', { name: str('The tag'), ...times }, ['name']);
const list = (name: string, key: string, item: object) => ({
  name,
  properties: {
    [key]: { type: 'array', items: item },
    first: { type: 'string' },
    next: { type: 'string' },
    schema: { type: 'string' },
  },
  links: [
    { rel: 'first', href: '{first}' },
    { rel: 'next', href: '{next}' },
    { rel: 'describedby', href: '{schema}' },
  ],
});
export const METADEF_SCHEMAS: Readonly<Record<string, object>> = {
  namespace,
  namespaces: list('namespaces', 'namespaces', namespace),
  resource_type: association_,
  resource_types: list('resource_type_associations', 'resource_type_associations', association_),
  object,
  objects: list('objects', 'objects', object),
  property,
  properties: { name: 'properties', properties: { properties: { type: 'object', additionalProperties: property } } },
  tag,
  tags: list('tags', 'tags', tag),
};
