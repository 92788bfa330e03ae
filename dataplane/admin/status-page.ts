/** The status page at `/` of the admin port: dataplane/admin/ui, built into dist/admin-ui. */
import { StaticFiles } from '../http/static-files';

export const STATUS_PAGE = new StaticFiles('admin-ui', { '/': 'index.html', '/ui/status.js': 'status.js', '/ui/status.css': 'status.css' });
