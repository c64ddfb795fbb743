import json
import requests

token = "your_token"
project_id = "your_project_id"
image_name = "your_image_name"

headers = {"X-Auth-token": token, "Content-Type": "application/json"}
payload = json.dumps({"imageName": image_name})
r = requests.post('BASE/api/similarity-labels?project=' + project_id + '&threshold=10&save=false&use-first=false',
                  headers=headers, data=payload)

if r.status_code == 200:
    print(r.text)
else:
    print('Error occured with REST API.')
    print('Status code: {}'.format(r.status_code))
    print('Error message: ' + r.text)
